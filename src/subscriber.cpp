#include <vigil/subscriber.hpp>

#include <stdexcept>
#include <utility>

namespace vigil {

namespace {

class function_subscriber final : public subscriber {
 public:
  function_subscriber(std::string name, std::function<void(const event&)> fn)
      : name_(std::move(name)), fn_(std::move(fn)) {}

  void on_event(const event& e) override { fn_(e); }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  std::function<void(const event&)> fn_;
};

}  // namespace

std::shared_ptr<subscriber> make_subscriber(std::string name,
                                            std::function<void(const event&)> fn) {
  if (!fn)
    throw std::invalid_argument("vigil: make_subscriber: fn must be set");
  return std::make_shared<function_subscriber>(std::move(name), std::move(fn));
}

}  // namespace vigil
