// <linux/kvm.h> for C++. The UAPI headers declare flexible arrays through
// __DECLARE_FLEX_ARRAY, whose empty struct has size 1 in C++ but 0 in C: struct
// layouts (kvm_cpuid2, kvm_msrs, kvm_xsave...) and the sizes encoded in their ioctl
// numbers would then differ from the kernel's and KVM answers EINVAL. Declaring the
// member as a GNU zero-length array restores the C layout. Every backend file
// includes this instead of <linux/kvm.h>.
#pragma once
#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]
#include <linux/kvm.h>

#if defined(__x86_64__)
static_assert(sizeof(kvm_cpuid2) == 8, "kvm_cpuid2 must have the kernel's C layout");
static_assert(sizeof(kvm_msrs) == 8, "kvm_msrs must have the kernel's C layout");
static_assert(sizeof(kvm_xsave) == 4096, "kvm_xsave must have the kernel's C layout");
#elif defined(__aarch64__)
static_assert(sizeof(kvm_reg_list) == 8, "kvm_reg_list must have the kernel's C layout");
#endif
