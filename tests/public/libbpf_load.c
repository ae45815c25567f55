// SPDX-License-Identifier: GPL-2.0
/*
 * The libbpf side of the public-object kernel matrix (tests/public/matrix.sh):
 * opens one BPF object with libbpf and loads it (bpf_object__load: maps,
 * relocations, every program), as a skeleton's load does, then releases it.
 * Built statically, so that it runs in the matrix's busybox guests.
 *
 *   libbpf_load OBJ    exit 0: loaded; 1: libbpf refused it (its first
 *                      warning on stderr); 2: usage
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char first[512];

static int keep_first_warning(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && !first[0])
		vsnprintf(first, sizeof(first), fmt, ap);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OBJ\n", argv[0]);
		return 2;
	}
	libbpf_set_print(keep_first_warning);
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "libbpf: %s: open: %s: %s", argv[1], strerror(errno), first);
		return 1;
	}
	int err = bpf_object__load(obj);
	bpf_object__close(obj);
	if (err) {
		fprintf(stderr, "libbpf: %s: load: %s: %s", argv[1], strerror(-err), first);
		return 1;
	}
	printf("libbpf loaded %s\n", argv[1]);
	return 0;
}
