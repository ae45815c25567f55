// The anchor of the multi-program attach bench (issue 21): what `rawbpf
// attach OBJ --name NAME` and `rawbpf detach --name NAME` do, done the way a
// libbpf user would, so both can be timed on the same object in the same run.
//
//   libbpf_attach attach OBJ NAME   open, load, bpf_program__attach() every
//                                   program, pin each link and every map under
//                                   /sys/fs/bpf/libbpf_anchor/groups/NAME so
//                                   they outlive the process, exit
//   libbpf_attach detach NAME       open each pinned link, BPF_LINK_DETACH it
//                                   (a kind without it ends with its pin),
//                                   close it, unpin it; unpin the maps, remove
//                                   the directories
//
// rawbpf's group does the same pins (links/PROG, maps/MAP) and, besides,
// stages them in a directory of its own and renames it into place (crash
// safety), and its detach returns only once no program of the group can
// run (a raw tracepoint link released in the call, each tracepoint watched
// until its program has left it; loader/src/link/release.rs); the anchor
// does neither: the kernel releases its links after it has returned. Built statically and dynamically against Debian's
// libbpf-dev by the bench (bench/src/links.rs).
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT "/sys/fs/bpf/libbpf_anchor/groups"

static int fail(const char *what, int err) {
	fprintf(stderr, "libbpf_attach: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static int make_dirs(const char *name) {
	char path[512];
	mkdir("/sys/fs/bpf/libbpf_anchor", 0700);
	mkdir(ROOT, 0700);
	snprintf(path, sizeof(path), ROOT "/%s", name);
	if (mkdir(path, 0700))
		return fail(path, errno);
	snprintf(path, sizeof(path), ROOT "/%s/links", name);
	if (mkdir(path, 0700))
		return fail(path, errno);
	return 0;
}

static int attach(const char *file, const char *name) {
	struct bpf_object *obj = bpf_object__open_file(file, NULL);
	if (!obj)
		return fail(file, errno);
	int err = bpf_object__load(obj);
	if (err) {
		bpf_object__close(obj);
		return fail("load", err);
	}
	int rc = make_dirs(name);
	struct bpf_program *prog;
	char path[512];
	bpf_object__for_each_program(prog, obj) {
		if (rc)
			break;
		struct bpf_link *link = bpf_program__attach(prog);
		if (!link) {
			rc = fail(bpf_program__name(prog), errno);
			break;
		}
		snprintf(path, sizeof(path), ROOT "/%s/links/%s", name, bpf_program__name(prog));
		err = bpf_link__pin(link, path);
		if (err)
			rc = fail(path, err);
		// The pin holds it now; this only frees libbpf's handle.
		bpf_link__disconnect(link);
		bpf_link__destroy(link);
	}
	if (!rc) {
		snprintf(path, sizeof(path), ROOT "/%s/maps", name);
		err = bpf_object__pin_maps(obj, path);
		if (err)
			rc = fail("pin maps", err);
	}
	bpf_object__close(obj);
	return rc;
}

/* Unpins each entry of DIR (links: detached first), then removes DIR. */
static int unpin_all(const char *dir, int links) {
	DIR *d = opendir(dir);
	if (!d)
		return fail(dir, errno);
	struct dirent *e;
	char path[768];
	int rc = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (links) {
			struct bpf_link *link = bpf_link__open(path);
			if (!link) {
				rc = fail(path, errno);
				continue;
			}
			bpf_link__detach(link); // perf_event links have no detach: the pin ends them
			// Our fd goes before the pin, as rawbpf's does: the pin is then
			// the last reference, and the kernel frees the link in a work
			// item. Unpinned first, close() would be the last reference and
			// free it in the call (a perf-event link: tracepoint
			// unregistration, ~90 ms here).
			bpf_link__destroy(link);
		}
		if (unlink(path)) {
			rc = fail(path, errno);
		}
	}
	closedir(d);
	if (rmdir(dir))
		rc = fail(dir, errno);
	return rc;
}

static int detach(const char *name) {
	char path[512];
	snprintf(path, sizeof(path), ROOT "/%s/links", name);
	int rc = unpin_all(path, 1);
	snprintf(path, sizeof(path), ROOT "/%s/maps", name);
	rc |= unpin_all(path, 0);
	snprintf(path, sizeof(path), ROOT "/%s", name);
	if (rmdir(path))
		rc = fail(path, errno);
	return rc;
}

int main(int argc, char **argv) {
	libbpf_set_print(NULL);
	if (argc == 4 && !strcmp(argv[1], "attach"))
		return attach(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "detach"))
		return detach(argv[2]);
	fprintf(stderr, "usage: libbpf_attach attach OBJ NAME | detach NAME\n");
	return 2;
}
