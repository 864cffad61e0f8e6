#include "parallel.h"

#include <algorithm>
#include <chrono>

#include <pthread.h>
#include <signal.h>

namespace recsys {

namespace {

// Blocks every signal in the calling thread while alive, so threads started meanwhile
// inherit a full mask: signals (query cancel, timeouts) then reach only the host
// process's main thread, whose handlers expect to run there.
class SignalMaskForNewThreads {
 public:
  SignalMaskForNewThreads() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old_);
  }
  ~SignalMaskForNewThreads() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

}  // namespace

namespace {
std::atomic<int> thread_ceiling{0};  // 0: no ceiling
}  // namespace

int hardware_threads() {
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

void set_thread_ceiling(int ceiling) { thread_ceiling.store(ceiling > 0 ? ceiling : 0, std::memory_order_relaxed); }

int resolve_threads(int requested) {
  int n = requested > 0 ? requested : hardware_threads();
  const int ceiling = thread_ceiling.load(std::memory_order_relaxed);
  return ceiling > 0 && n > ceiling ? ceiling : n;
}

void parallel_for(int64_t n_tasks, int threads, const CancelToken& cancel,
                  const std::function<void(int64_t, int)>& fn) {
  if (n_tasks <= 0) return;
  threads = resolve_threads(std::max(1, threads));
  threads = std::max(1, std::min<int>(threads, static_cast<int>(std::min<int64_t>(n_tasks, 1 << 20))));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;

  auto worker = [&](int thread_index) {
    try {
      for (;;) {
        if (cancel.cancelled() || failed.load(std::memory_order_relaxed)) return;
        int64_t task = next.fetch_add(1, std::memory_order_relaxed);
        if (task >= n_tasks) return;
        fn(task, thread_index);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
      failed.store(true);
    }
  };

  if (threads == 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(threads - 1));
    try {
      SignalMaskForNewThreads mask;
      for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
    } catch (...) {
      // Could not start every thread: run with those we have.
    }
    worker(0);
    for (auto& th : pool) th.join();
  }
  if (first_error) std::rethrow_exception(first_error);
  cancel.check();
}

BackgroundJob::~BackgroundJob() { cancel_and_join(); }

void BackgroundJob::start(std::function<void(const CancelToken&)> fn) {
  SignalMaskForNewThreads mask;
  thread_ = std::thread([this, fn = std::move(fn)]() {
    std::exception_ptr err;
    try {
      fn(cancel_);
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = err;
    done_ = true;
    done_cv_.notify_all();
  });
}

bool BackgroundJob::wait_for(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  done_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return done_; });
  return done_;
}

void BackgroundJob::cancel_and_join() {
  cancel_.cancel();
  if (thread_.joinable()) thread_.join();
}

void BackgroundJob::rethrow_if_failed() {
  if (thread_.joinable()) thread_.join();
  if (error_) std::rethrow_exception(error_);
}

void BackgroundJob::post_message(std::string line) {
  std::lock_guard<std::mutex> lock(mutex_);
  messages_.push_back(std::move(line));
}

std::vector<std::string> BackgroundJob::take_messages() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  out.swap(messages_);
  return out;
}

}  // namespace recsys
