// SPDX-License-Identifier: Apache-2.0
/*
 * transport.bpf.c - the object's license. The transport itself (maps, emit
 * path) lives in lib/ and is linked into every program of the one object.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "pt_kinds.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
