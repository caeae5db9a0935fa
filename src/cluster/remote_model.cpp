// RemoteModel: the command protocol between the driver rank and a model group (broadcast + reply).
#include "gpujob/cluster/remote_model.hpp"

#include "gpujob/cluster/mpi_check.hpp"
#include "gpujob/util/error.hpp"

#include <exception>
#include <string>

namespace gpujob::cluster {

namespace {

enum class Op : int64_t { kReset = 1, kGenerate = 2, kTruncate = 3, kShutdown = 4 };

constexpr int kReplyTag = 7301;

// Fixed-size part of a command, broadcast as bytes (every rank runs the same binary).
struct CommandHeader {
  int64_t op = 0;
  int64_t length = 0;        // kTruncate: new length; kGenerate: max_new_tokens
  int64_t n_tokens = 0;      // int64 tokens that follow: kReset the prompt, kGenerate appended ones
  int64_t n_stop_bytes = 0;  // kGenerate: serialized stop strings that follow
  uint64_t stream_key = 0;
  int64_t first_step = 0;
  double temperature = 0.0;
  double top_p = 1.0;
  double min_p = 0.0;
  int64_t top_k = 0;
  uint64_t seed = 0;
};

struct Command {
  CommandHeader header;
  std::vector<int64_t> tokens;
  std::string stop_bytes;
};

// Stop strings as (8-byte length, bytes) records.
std::string pack_strings(const std::vector<std::string>& strings) {
  std::string out;
  for (const std::string& s : strings) {
    const uint64_t n = s.size();
    out.append(reinterpret_cast<const char*>(&n), sizeof(n));
    out += s;
  }
  return out;
}

std::vector<std::string> unpack_strings(const std::string& bytes) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < bytes.size()) {
    GPUJOB_CHECK(at + sizeof(uint64_t) <= bytes.size(), "remote model: malformed stop strings");
    uint64_t n = 0;
    bytes.copy(reinterpret_cast<char*>(&n), sizeof(n), at);
    at += sizeof(n);
    GPUJOB_CHECK(at + n <= bytes.size(), "remote model: malformed stop strings");
    out.push_back(bytes.substr(at, n));
    at += n;
  }
  return out;
}

int count_of(size_t n, const char* what) {
  GPUJOB_CHECK(n <= static_cast<size_t>(INT32_MAX), "remote model: ", what, " of ", n, " elements is too large");
  return static_cast<int>(n);
}

// Collective over the channel: the driver's command reaches every member.
void broadcast(Command& c, MPI_Comm channel) {
  check_mpi(MPI_Bcast(&c.header, static_cast<int>(sizeof(CommandHeader)), MPI_BYTE, 0, channel),
            "remote model: MPI_Bcast of a command");
  c.tokens.resize(static_cast<size_t>(c.header.n_tokens));
  if (!c.tokens.empty()) {
    check_mpi(MPI_Bcast(c.tokens.data(), count_of(c.tokens.size(), "token list"), MPI_INT64_T, 0, channel),
              "remote model: MPI_Bcast of tokens");
  }
  c.stop_bytes.resize(static_cast<size_t>(c.header.n_stop_bytes));
  if (!c.stop_bytes.empty()) {
    check_mpi(MPI_Bcast(c.stop_bytes.data(), count_of(c.stop_bytes.size(), "stop strings"), MPI_CHAR, 0, channel),
              "remote model: MPI_Bcast of stop strings");
  }
}

model::GenerateRequest request_of(const Command& c) {
  model::GenerateRequest r;
  r.max_new_tokens = c.header.length;
  r.stop_strings = unpack_strings(c.stop_bytes);
  r.stream_key = c.header.stream_key;
  r.first_step = c.header.first_step;
  r.sampling.temperature = c.header.temperature;
  r.sampling.top_p = c.header.top_p;
  r.sampling.min_p = c.header.min_p;
  r.sampling.top_k = c.header.top_k;
  r.sampling.seed = c.header.seed;
  return r;
}

void send_result(const model::GenerateResult& r, int driver, MPI_Comm channel) {
  int64_t head[3] = {static_cast<int64_t>(r.tokens.size()), static_cast<int64_t>(r.reason), r.eos ? 1 : 0};
  check_mpi(MPI_Send(head, 3, MPI_INT64_T, driver, kReplyTag, channel), "remote model: MPI_Send of a result");
  if (!r.tokens.empty()) {
    check_mpi(MPI_Send(r.tokens.data(), count_of(r.tokens.size(), "result"), MPI_INT64_T, driver, kReplyTag, channel),
              "remote model: MPI_Send of result tokens");
  }
}

model::GenerateResult receive_result(int leader, MPI_Comm channel) {
  int64_t head[3] = {0, 0, 0};
  check_mpi(MPI_Recv(head, 3, MPI_INT64_T, leader, kReplyTag, channel, MPI_STATUS_IGNORE),
            "remote model: MPI_Recv of a result");
  model::GenerateResult r;
  r.tokens.resize(static_cast<size_t>(head[0]));
  r.reason = static_cast<model::FinishReason>(head[1]);
  r.eos = head[2] != 0;
  if (!r.tokens.empty()) {
    check_mpi(MPI_Recv(r.tokens.data(), count_of(r.tokens.size(), "result"), MPI_INT64_T, leader, kReplyTag, channel,
                       MPI_STATUS_IGNORE),
              "remote model: MPI_Recv of result tokens");
  }
  return r;
}

}  // namespace

RemoteModel::RemoteModel(MPI_Comm channel, int leader, model::SequenceModel* local)
    : channel_(channel), leader_(leader), local_(local) {
  int rank = -1;
  int size = 0;
  check_mpi(MPI_Comm_rank(channel, &rank), "remote model: MPI_Comm_rank");
  check_mpi(MPI_Comm_size(channel, &size), "remote model: MPI_Comm_size");
  GPUJOB_CHECK(rank == 0, "remote model: the driver must be channel rank 0, is ", rank);
  GPUJOB_CHECK(leader >= 0 && leader < size, "remote model: leader ", leader, " outside a channel of ", size);
  GPUJOB_CHECK((leader == 0) == (local != nullptr),
               "remote model: the driver holds a local shard exactly when it leads the group");
}

RemoteModel::~RemoteModel() {
  // While an exception unwinds, the members are left blocked: the job's abort ends them, and a
  // shutdown message would let them run on into collectives the failed driver never joins.
  if (std::uncaught_exceptions() > 0) return;
  try {
    shutdown();
  } catch (...) {
  }
}

void RemoteModel::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  Command c;
  c.header.op = static_cast<int64_t>(Op::kShutdown);
  broadcast(c, channel_);
}

void RemoteModel::reset(const std::vector<int64_t>& prompt) {
  GPUJOB_CHECK(!shut_down_, "remote model: used after shutdown");
  Command c;
  c.header.op = static_cast<int64_t>(Op::kReset);
  c.header.n_tokens = static_cast<int64_t>(prompt.size());
  c.tokens = prompt;
  broadcast(c, channel_);
  if (local_ != nullptr) local_->reset(prompt);
  pending_.clear();
  remote_length_ = static_cast<int64_t>(prompt.size());
}

void RemoteModel::append(const std::vector<int64_t>& tokens) {
  pending_.insert(pending_.end(), tokens.begin(), tokens.end());
}

model::GenerateResult RemoteModel::generate(const model::GenerateRequest& request) {
  GPUJOB_CHECK(!shut_down_, "remote model: used after shutdown");
  Command c;
  CommandHeader& h = c.header;
  h.op = static_cast<int64_t>(Op::kGenerate);
  h.length = request.max_new_tokens;
  h.n_tokens = static_cast<int64_t>(pending_.size());
  c.tokens = pending_;
  c.stop_bytes = pack_strings(request.stop_strings);
  h.n_stop_bytes = static_cast<int64_t>(c.stop_bytes.size());
  h.stream_key = request.stream_key;
  h.first_step = request.first_step;
  h.temperature = request.sampling.temperature;
  h.top_p = request.sampling.top_p;
  h.min_p = request.sampling.min_p;
  h.top_k = request.sampling.top_k;
  h.seed = request.sampling.seed;
  broadcast(c, channel_);
  model::GenerateResult result;
  if (local_ != nullptr) {
    if (!pending_.empty()) local_->append(pending_);
    result = local_->generate(request);
  } else {
    result = receive_result(leader_, channel_);
  }
  remote_length_ += static_cast<int64_t>(pending_.size() + result.tokens.size());
  pending_.clear();
  return result;
}

void RemoteModel::truncate(int64_t new_length) {
  GPUJOB_CHECK(new_length >= 1 && new_length <= length(), "remote model: cannot truncate ", length(),
               " tokens to ", new_length);
  if (new_length >= remote_length_) {  // only unsent tokens go: nothing to tell the group
    pending_.resize(static_cast<size_t>(new_length - remote_length_));
    return;
  }
  Command c;
  c.header.op = static_cast<int64_t>(Op::kTruncate);
  c.header.length = new_length;
  broadcast(c, channel_);
  if (local_ != nullptr) local_->truncate(new_length);
  pending_.clear();
  remote_length_ = new_length;
}

void serve_remote_model(MPI_Comm channel, int leader, model::SequenceModel& local) {
  int rank = -1;
  check_mpi(MPI_Comm_rank(channel, &rank), "remote model: MPI_Comm_rank");
  GPUJOB_CHECK(rank != 0, "remote model: the driver (channel rank 0) does not serve");
  for (;;) {
    Command c;
    broadcast(c, channel);
    switch (static_cast<Op>(c.header.op)) {
      case Op::kReset:
        local.reset(c.tokens);
        break;
      case Op::kGenerate: {
        if (!c.tokens.empty()) local.append(c.tokens);
        model::GenerateResult r = local.generate(request_of(c));
        if (rank == leader) send_result(r, 0, channel);
        break;
      }
      case Op::kTruncate:
        local.truncate(c.header.length);
        break;
      case Op::kShutdown:
        return;
      default:
        fail("remote model: unknown command ", c.header.op, " on channel rank ", rank);
    }
  }
}

}  // namespace gpujob::cluster
