#include <vigil/running_handle.hpp>

#include <asio/use_awaitable.hpp>

#include <stdexcept>
#include <string>

namespace vigil {
namespace {

void require(const void* state, const char* member) {
  if (state == nullptr)
    throw std::logic_error(std::string("vigil: running_handle::") + member + " on an empty handle");
}

}  // namespace

bool running_handle::done() const {
  require(state_.get(), "done()");
  return state_->is_set();
}

bool running_handle::crashed() const {
  return error() != nullptr;
}

std::exception_ptr running_handle::error() const {
  require(state_.get(), "error()");
  const auto ended = state_->get();
  return ended ? *ended : nullptr;
}

namespace {

asio::awaitable<void> wait_for(std::shared_ptr<detail::run_state> state) {
  std::exception_ptr crash;
  if (const auto ended = state->get())
    crash = *ended;
  else
    crash = co_await state->async_wait(asio::use_awaitable);
  if (crash)
    std::rethrow_exception(crash);
}

asio::awaitable<void> join_run(std::shared_ptr<detail::run_state> state) {
  if (!state->is_set())
    co_await state->async_wait(asio::use_awaitable);
}

}  // namespace

asio::awaitable<void> running_handle::join() const {
  require(state_.get(), "join()");
  return join_run(state_);
}

asio::awaitable<void> running_handle::wait() const {
  require(state_.get(), "wait()");  // here, not when awaited: the mistake shows where it is
  return wait_for(state_);          // the frame keeps the run alive even if the handle goes away
}

bool bus_run::fail(std::exception_ptr error) {
  if (!error)
    throw std::invalid_argument("vigil: bus_run::fail: the error must not be null");
  return state_->set(std::move(error));
}

}  // namespace vigil
