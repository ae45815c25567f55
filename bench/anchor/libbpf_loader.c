// The benchmark's anchor: the job rawbpf does, done the way a libbpf user
// would, so both loaders can be timed on the same object in the same run.
//
//   libbpf_loader load   OBJ               open, load, fill the prog array (.values), exit
//   libbpf_loader attach OBJ NETNS DEV     ... then clsact + direct-action filter at ingress
//                                          priority 1, pins the chain so it outlives the process
//   libbpf_loader list   NETNS DEV         query the filter, print program id, name and tag
//   libbpf_loader detach NETNS DEV         delete filter, clsact and pins
//   libbpf_loader job    OBJ NETNS DEV     load + attach + verify + detach in one process
//
// Pins live under /sys/fs/bpf/libbpf_anchor/NETNS/DEV. Built statically and
// dynamically against Debian's libbpf-dev by bench/run.sh.
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *PROGS[] = {"mark_packet", "inspect_and_drop"};

static int fail(const char *what, int err) {
	fprintf(stderr, "libbpf_loader: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static int enter_netns(const char *name) {
	char path[256];
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int err = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return err;
}

static void pin_dir(char *buf, size_t len, const char *netns, const char *dev, const char *leaf) {
	snprintf(buf, len, "/sys/fs/bpf/libbpf_anchor/%s/%s%s%s", netns, dev, leaf ? "/" : "", leaf ? leaf : "");
}

static struct bpf_tc_hook hook_for(int ifindex) {
	struct bpf_tc_hook hook;
	memset(&hook, 0, sizeof(hook));
	hook.sz = sizeof(hook);
	hook.ifindex = ifindex;
	hook.attach_point = BPF_TC_INGRESS;
	return hook;
}

static struct bpf_tc_opts opts_for(int prog_fd) {
	struct bpf_tc_opts opts;
	memset(&opts, 0, sizeof(opts));
	opts.sz = sizeof(opts);
	opts.handle = 1;
	opts.priority = 1;
	opts.prog_fd = prog_fd;
	return opts;
}

static int attach(struct bpf_object *obj, int ifindex) {
	struct bpf_program *entry = bpf_object__find_program_by_name(obj, PROGS[0]);
	if (!entry)
		return fail("no program mark_packet", ENOENT);
	struct bpf_tc_hook hook = hook_for(ifindex);
	int err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST)
		return fail("create clsact", err);
	struct bpf_tc_opts opts = opts_for(bpf_program__fd(entry));
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		return fail("attach filter", err);
	return 0;
}

static int query(int ifindex, int print) {
	struct bpf_tc_hook hook = hook_for(ifindex);
	struct bpf_tc_opts opts = opts_for(0);
	int err = bpf_tc_query(&hook, &opts);
	if (err)
		return fail("query filter", err);
	int fd = bpf_prog_get_fd_by_id(opts.prog_id);
	if (fd < 0)
		return fail("program by id", fd);
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err)
		return fail("program info", err);
	if (print) {
		printf("ingress pref 1 handle 1 id %u name %s tag ", opts.prog_id, info.name);
		for (int i = 0; i < 8; i++)
			printf("%02x", info.tag[i]);
		printf("\n");
	}
	return 0;
}

static int detach(int ifindex) {
	struct bpf_tc_hook hook = hook_for(ifindex);
	struct bpf_tc_opts opts = opts_for(0);
	int err = bpf_tc_detach(&hook, &opts);
	if (err)
		return fail("detach filter", err);
	hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
	err = bpf_tc_hook_destroy(&hook);
	if (err)
		return fail("delete clsact", err);
	return 0;
}

static struct bpf_object *open_and_load(const char *path) {
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fail(path, errno);
		return NULL;
	}
	int err = bpf_object__load(obj);
	if (err) {
		fail("load", err);
		bpf_object__close(obj);
		return NULL;
	}
	return obj;
}

static int pin_chain(struct bpf_object *obj, const char *netns, const char *dev) {
	char path[512];
	pin_dir(path, sizeof(path), netns, dev, NULL);
	struct bpf_map *map = bpf_object__find_map_by_name(obj, "prog_array");
	if (!map)
		return fail("no map prog_array", ENOENT);
	mkdir("/sys/fs/bpf/libbpf_anchor", 0700);
	char ns_dir[512];
	snprintf(ns_dir, sizeof(ns_dir), "/sys/fs/bpf/libbpf_anchor/%s", netns);
	mkdir(ns_dir, 0700);
	if (mkdir(path, 0700) && errno != EEXIST)
		return fail(path, errno);
	pin_dir(path, sizeof(path), netns, dev, "prog_array");
	int err = bpf_map__pin(map, path);
	if (err)
		return fail("pin prog_array", err);
	for (int i = 0; i < 2; i++) {
		pin_dir(path, sizeof(path), netns, dev, PROGS[i]);
		err = bpf_program__pin(bpf_object__find_program_by_name(obj, PROGS[i]), path);
		if (err)
			return fail("pin program", err);
	}
	return 0;
}

static int unpin_chain(const char *netns, const char *dev) {
	char path[512];
	pin_dir(path, sizeof(path), netns, dev, "prog_array");
	if (unlink(path))
		return fail(path, errno);
	for (int i = 0; i < 2; i++) {
		pin_dir(path, sizeof(path), netns, dev, PROGS[i]);
		if (unlink(path))
			return fail(path, errno);
	}
	pin_dir(path, sizeof(path), netns, dev, NULL);
	if (rmdir(path))
		return fail(path, errno);
	/* The parents too, once empty (another device may still use them). */
	snprintf(path, sizeof(path), "/sys/fs/bpf/libbpf_anchor/%s", netns);
	rmdir(path);
	rmdir("/sys/fs/bpf/libbpf_anchor");
	return 0;
}

static int ifindex_in(const char *netns, const char *dev) {
	int err = enter_netns(netns);
	if (err) {
		fail(netns, err);
		return 0;
	}
	int ifindex = if_nametoindex(dev);
	if (!ifindex)
		fail(dev, errno);
	return ifindex;
}

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: libbpf_loader load|attach|list|detach|job ...\n");
		return 2;
	}
	libbpf_set_print(NULL);
	const char *cmd = argv[1];
	if (!strcmp(cmd, "load")) {
		struct bpf_object *obj = open_and_load(argv[2]);
		if (!obj)
			return 1;
		bpf_object__close(obj);
		return 0;
	}
	if (!strcmp(cmd, "list") || !strcmp(cmd, "detach")) {
		if (argc != 4)
			return 2;
		int ifindex = ifindex_in(argv[2], argv[3]);
		if (!ifindex)
			return 1;
		if (!strcmp(cmd, "list"))
			return query(ifindex, 1);
		return detach(ifindex) || unpin_chain(argv[2], argv[3]);
	}
	if (argc != 5)
		return 2;
	int ifindex = ifindex_in(argv[3], argv[4]);
	if (!ifindex)
		return 1;
	struct bpf_object *obj = open_and_load(argv[2]);
	if (!obj)
		return 1;
	int rc = 2;
	if (!strcmp(cmd, "attach"))
		rc = pin_chain(obj, argv[3], argv[4]) || attach(obj, ifindex);
	else if (!strcmp(cmd, "job"))
		rc = attach(obj, ifindex) || query(ifindex, 0) || detach(ifindex);
	bpf_object__close(obj);
	return rc;
}
