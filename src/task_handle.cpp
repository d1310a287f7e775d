#include <vigil/task_handle.hpp>

#include <asio/use_awaitable.hpp>

#include <stdexcept>

namespace vigil {
namespace {

const std::string empty_name;

void require(const void* state, const char* member) {
  if (state == nullptr)
    throw std::logic_error(std::string("vigil: task_handle::") + member + " on an empty handle");
}

}  // namespace

const std::string& task_handle::name() const noexcept {
  return state_ ? state_->name : empty_name;
}

bool task_handle::done() const {
  require(state_.get(), "done()");
  return state_->outcome.is_set();
}

std::optional<task_outcome> task_handle::try_outcome() const {
  require(state_.get(), "try_outcome()");
  return state_->outcome.get();
}

asio::awaitable<task_outcome> task_handle::wait() const {
  require(state_.get(), "wait()");
  auto state = state_;  // the frame keeps the outcome alive even if the handle goes away
  if (auto outcome = state->outcome.get())
    co_return std::move(*outcome);
  co_return co_await state->outcome.async_wait(asio::use_awaitable);
}

}  // namespace vigil
