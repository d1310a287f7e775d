// Links vigil::redis from an installed vigil: a redis_bus is made (no server is needed for that).
#include <vigil/redis_bus.hpp>

#include <asio/io_context.hpp>

#include <cstdio>

int main() {
  asio::io_context io;
  const vigil::redis_bus bus(io.get_executor(), {.stream = "jobs", .group = "workers"});
  std::printf("%s\n", bus.name().c_str());
  return bus.name() == "redis:jobs/workers" ? 0 : 1;
}
