# Turns bpftool's skeleton into one that does not embed the object: the
# body of proctap_bpf__elf_bytes (the whole object as a string literal,
# ~1 MB of text) becomes a reference to the object's bytes, which
# bpf_object.S links in from proctap.bpf.o itself. The skeleton is then a
# small text file that can be checked in beside the object (prebuilt/).
/^static inline const void \*proctap_bpf__elf_bytes\(size_t \*sz\)$/ {
	print "extern const char proctap_bpf_object[], proctap_bpf_object_end[];"
	print ""
	print $0
	print "{"
	print "\t*sz = (size_t)(proctap_bpf_object_end - proctap_bpf_object);"
	print "\treturn (const void *)proctap_bpf_object;"
	print "}"
	skipping = 1
	found = 1
	next
}
skipping && /^}$/ { skipping = 0; next }
!skipping { print }
END {
	if (!found) {
		print "skel-bytes.awk: no proctap_bpf__elf_bytes in bpftool's skeleton" > "/dev/stderr"
		exit 1
	}
}
