// A hook consulted before the device bus on every port I/O exit, for guests whose
// "devices" are hypercalls that need the vCPU's registers (Hermit's uhyve interface).
#pragma once
#include <string>

#include "backend/hypervisor.h"
#include "devices/device.h"

namespace vmrun {

class PortIoHandler {
 public:
  virtual ~PortIoHandler() = default;
  /** Returns true if it handled the exit (the bus is then not consulted). */
  virtual bool handle(Vcpu& vcpu, const VcpuExit& exit) = 0;
  /** Host-side state a snapshot keeps, filed among the devices under this name ("" for none). */
  virtual std::string state_name() const { return ""; }
  /** Called with the vCPUs parked. */
  virtual StateBlob save() { return {}; }
  /** Called on a fresh handler before the vCPUs first run. */
  virtual void restore(const StateBlob& /*state*/) {}
};

}  // namespace vmrun
