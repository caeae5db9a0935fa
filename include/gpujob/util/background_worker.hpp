// BackgroundWorker: one thread that runs tasks one at a time, in the order they were queued.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace gpujob {

// Takes slow work (disk writes and their fsyncs) off the calling thread while it goes on with the
// next piece of compute. Everything a library that is not thread-safe does (HDF5) must then go
// through the worker, and the caller touches that library again only after drain().
//
// At most `max_pending` tasks wait; enqueue() blocks beyond that, which bounds the memory held by
// queued tasks. The first task that throws stops the worker (later tasks are dropped, not run) and
// its exception is rethrown by the next enqueue() or drain() on the calling thread. The destructor
// does not run tasks still queued: it finishes the one running and joins (after an exception, the
// dropped work is simply not recorded as done).
class BackgroundWorker {
 public:
  explicit BackgroundWorker(std::size_t max_pending);
  ~BackgroundWorker();
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  void enqueue(std::function<void()> task);
  // Waits until every queued task has run; rethrows the first task error.
  void drain();

 private:
  void run();
  void rethrow_error_locked();

  std::size_t max_pending_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::function<void()>> tasks_;
  bool busy_ = false;      // a task is running
  bool stopping_ = false;  // the destructor asked the thread to end
  std::exception_ptr error_;
  std::thread thread_;     // last: starts after the members it uses exist
};

}  // namespace gpujob
