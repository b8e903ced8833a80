/* The BPF object's bytes, linked into libproctap.a: proctap.skel.h (made
 * by c/tools/skel-bytes.awk) hands these to libbpf instead of a copy
 * embedded in the header. The build defines PT_BPF_OBJECT as the object's
 * absolute path, a string literal. */
	.section .rodata
	.balign 8
	.globl proctap_bpf_object
	.globl proctap_bpf_object_end
proctap_bpf_object:
	.incbin PT_BPF_OBJECT
proctap_bpf_object_end:
	.section .note.GNU-stack, "", %progbits
