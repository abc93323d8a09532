// A hook consulted before the device bus on every port I/O exit, for guests whose
// "devices" are hypercalls that need the vCPU's registers (Hermit's uhyve interface).
#pragma once
#include "backend/hypervisor.h"

namespace vmrun {

class PortIoHandler {
 public:
  virtual ~PortIoHandler() = default;
  /** Returns true if it handled the exit (the bus is then not consulted). */
  virtual bool handle(Vcpu& vcpu, const VcpuExit& exit) = 0;
};

}  // namespace vmrun
