/* The BPF object's bytes, linked into libproctap.a: proctap.skel.h (made
 * by c/tools/skel-bytes.awk) hands these to libbpf instead of a copy
 * embedded in the header. The build puts proctap.bpf.o on the assembler's
 * include path (-Wa,-I), where .incbin finds it. */
	.section .rodata
	.balign 8
	.globl proctap_bpf_object
	.globl proctap_bpf_object_end
proctap_bpf_object:
	.incbin "proctap.bpf.o"
proctap_bpf_object_end:
	.section .note.GNU-stack, "", %progbits
