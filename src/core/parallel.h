// Threads for the core: a parallel loop with dynamic scheduling and cooperative
// cancellation, and a background job that lets the PostgreSQL main thread keep polling
// for interrupts while training runs. Nothing here touches PostgreSQL.
#pragma once
#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

namespace recsys {

// A flag workers poll between units of work; set by the main thread on cancellation.
class CancelToken {
 public:
  void cancel() { flag_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return flag_.load(std::memory_order_relaxed); }
  // Throws Error(Cancelled) when the flag is set.
  void check() const {
    if (cancelled()) fail(ErrorKind::Cancelled, "canceled");
  }

 private:
  std::atomic<bool> flag_{false};
};

// Number of threads to use for `requested` (0 = all hardware threads), at least 1 and
// at most the ceiling set by set_thread_ceiling (the PostgreSQL layer's recsys.max_threads).
int resolve_threads(int requested);
// The machine's hardware threads (at least 1).
int hardware_threads();
// Caps resolve_threads and parallel_for for the whole process; 0 removes the cap.
void set_thread_ceiling(int ceiling);

// Runs fn(task, thread) for task in [0, n_tasks) on `threads` threads; tasks are handed
// out one at a time from a shared counter so uneven task costs balance out. Stops
// handing out tasks once `cancel` is set or a task throws; rethrows the first exception
// (or Error(Cancelled)) after all threads have joined.
void parallel_for(int64_t n_tasks, int threads, const CancelToken& cancel,
                  const std::function<void(int64_t task, int thread)>& fn);

// Runs a function on a background thread. The owner polls wait_for() from its own
// thread; the destructor cancels and joins, so a job never outlives its owner.
class BackgroundJob {
 public:
  BackgroundJob() = default;
  ~BackgroundJob();
  BackgroundJob(const BackgroundJob&) = delete;
  BackgroundJob& operator=(const BackgroundJob&) = delete;

  // Starts fn on a new thread; fn receives the job's cancel token.
  void start(std::function<void(const CancelToken&)> fn);
  // Waits up to timeout_ms; true once the job has finished (successfully or not).
  bool wait_for(int timeout_ms);
  // Asks the job to stop and waits for it.
  void cancel_and_join();
  // After finishing: rethrows the job's exception, if any.
  void rethrow_if_failed();
  const CancelToken& token() const { return cancel_; }

  // Messages the job posts for the main thread (progress lines); drained by the owner.
  void post_message(std::string line);
  std::vector<std::string> take_messages();

 private:
  std::thread thread_;
  CancelToken cancel_;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::exception_ptr error_;
  std::vector<std::string> messages_;
};

}  // namespace recsys
