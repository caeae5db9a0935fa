#include "gpujob/util/background_worker.hpp"

#include <utility>

namespace gpujob {

BackgroundWorker::BackgroundWorker(std::size_t max_pending)
    : max_pending_(max_pending == 0 ? 1 : max_pending), thread_([this] { run(); }) {}

BackgroundWorker::~BackgroundWorker() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    tasks_.clear();
  }
  changed_.notify_all();
  thread_.join();
}

void BackgroundWorker::rethrow_error_locked() {
  if (error_) std::rethrow_exception(error_);
}

void BackgroundWorker::enqueue(std::function<void()> task) {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return error_ || tasks_.size() < max_pending_; });
  rethrow_error_locked();
  tasks_.push_back(std::move(task));
  lock.unlock();
  changed_.notify_all();
}

void BackgroundWorker::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return error_ || (tasks_.empty() && !busy_); });
  rethrow_error_locked();
}

void BackgroundWorker::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stopping_ || (!tasks_.empty() && !error_); });
    if (stopping_) return;
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    busy_ = true;
    lock.unlock();
    std::exception_ptr failure;
    try {
      task();
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    busy_ = false;
    if (failure) {
      error_ = failure;
      tasks_.clear();
    }
    changed_.notify_all();
  }
}

}  // namespace gpujob
