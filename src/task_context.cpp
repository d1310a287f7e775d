#include <vigil/task_context.hpp>

namespace vigil {

void task_context::ready() const {
  if (state_->ready.exchange(true, std::memory_order_acq_rel))
    return;  // once per attempt
  if (auto observer = state_->observer.lock())
    observer->on_ready(state_);
}

void detail::report(const task_context& ctx, event e) {
  if (auto observer = ctx.state_->observer.lock())
    observer->report(*ctx.state_, std::move(e));
}

}  // namespace vigil
