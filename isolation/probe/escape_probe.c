/*
 * escape_probe: try, from inside a container, the moves a root that wants out would make,
 * and print a JSON report of what the kernel let through. Built static by
 * isolation.probes.build_probe (gcc -static) so it runs in any rootfs, busybox included.
 *
 * It never writes anything: files are opened O_WRONLY and closed again (opening a
 * /proc/sys or /sys file has no effect until a write), reads are of one byte or one
 * sector, and system calls get arguments the kernel rejects after its permission check,
 * so "reached the argument check" (EINVAL, EFAULT, ...) means the call was allowed and
 * EPERM/EACCES means it was refused. Its own traces (a temporary directory, a device node
 * in it, a cgroup mount on it) are removed before it exits. securityfs, debugfs and tracefs
 * are never touched: opening some of their files for writing acts on close.
 *
 * Usage: escape_probe [--tmp DIR] [--no-mount] [--no-mknod]
 * Results: "denied" (refused), "allowed" (the move worked: an escape route inside a
 * container), "contained" (it worked, but only on the container's own share, such as its
 * own cgroup subtree), "absent" (nothing to try here), "skipped".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

static int first = 1;

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static const char *errname(int err)
{
	switch (err) {
	case 0: return "";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EROFS: return "EROFS";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case EBADF: return "EBADF";
	case ENOSYS: return "ENOSYS";
	case ENOEXEC: return "ENOEXEC";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EBUSY: return "EBUSY";
	case ENODEV: return "ENODEV";
	case ENXIO: return "ENXIO";
	case EIO: return "EIO";
	case ENOTDIR: return "ENOTDIR";
	case EEXIST: return "EEXIST";
	default: return "other";
	}
}

static void report(const char *name, const char *target, const char *result, int err,
		   const char *detail)
{
	printf("%s\n    {\"name\": ", first ? "" : ",");
	first = 0;
	json_string(name);
	printf(", \"target\": ");
	json_string(target);
	printf(", \"result\": ");
	json_string(result);
	printf(", \"errno\": ");
	json_string(errname(err));
	printf(", \"detail\": ");
	json_string(detail ? detail : "");
	printf("}");
}

/* Open for writing and close at once; never write. */
static int try_open_write(const char *path, int *err)
{
	int fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		*err = errno;
		return 0;
	}
	close(fd);
	*err = 0;
	return 1;
}

static void probe_open_write(const char *name, const char *path)
{
	int err;
	if (try_open_write(path, &err))
		report(name, path, "allowed", 0, "opened for writing (nothing written)");
	else
		report(name, path, err == ENOENT ? "absent" : "denied", err, NULL);
}

/* Every regular file below dir (recursively if deep), opened O_WRONLY. */
struct tally {
	int tried, opened, namespaced;
	char first_opened[1024];
};

/* kernel.* sysctls that belong to the caller's own UTS, IPC or PID namespace: root of a
 * container may set them, so they are no way out. */
static int namespaced_sysctl(const char *path)
{
	static const char *const names[] = {
		"/proc/sys/kernel/hostname", "/proc/sys/kernel/domainname",
		"/proc/sys/kernel/ns_last_pid", "/proc/sys/kernel/pid_max",
		"/proc/sys/kernel/shmmax", "/proc/sys/kernel/shmall", "/proc/sys/kernel/shmmni",
		"/proc/sys/kernel/shm_rmid_forced", "/proc/sys/kernel/shm_next_id",
		"/proc/sys/kernel/msgmax", "/proc/sys/kernel/msgmni", "/proc/sys/kernel/msgmnb",
		"/proc/sys/kernel/msg_next_id", "/proc/sys/kernel/sem",
		"/proc/sys/kernel/sem_next_id", "/proc/sys/kernel/auto_msgmni", NULL,
	};
	int i;
	for (i = 0; names[i]; i++)
		if (!strcmp(path, names[i]))
			return 1;
	return 0;
}

static void walk_open_write(const char *dir, int deep, struct tally *t)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[1024];
		struct stat st;
		int err;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (deep)
				walk_open_write(path, deep, t);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !(st.st_mode & 0222))
			continue; /* read-only by mode for everyone: nothing to learn */
		if (namespaced_sysctl(path)) {
			t->namespaced++;
			continue;
		}
		t->tried++;
		if (try_open_write(path, &err)) {
			if (!t->opened)
				snprintf(t->first_opened, sizeof(t->first_opened), "%s", path);
			t->opened++;
		}
	}
	closedir(d);
}

static void probe_tree_write(const char *name, const char *dir, int deep)
{
	struct tally t = {0, 0, 0, ""};
	char detail[1200];
	walk_open_write(dir, deep, &t);
	if (!t.tried) {
		report(name, dir, "absent", ENOENT, "no writable-by-mode files");
		return;
	}
	if (t.opened)
		snprintf(detail, sizeof(detail),
			 "%d of %d opened for writing, e.g. %s (%d namespaced ones not tried)",
			 t.opened, t.tried, t.first_opened, t.namespaced);
	else
		snprintf(detail, sizeof(detail),
			 "0 of %d opened for writing (%d namespaced ones not tried)", t.tried,
			 t.namespaced);
	report(name, dir, t.opened ? "allowed" : "denied", 0, detail);
}

/* Read one byte; an empty file (/dev/null bound over it) counts as hidden. */
static void probe_read(const char *name, const char *path)
{
	char c;
	ssize_t n;
	int err, fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		report(name, path, errno == ENOENT ? "absent" : "denied", errno, NULL);
		return;
	}
	n = read(fd, &c, 1);
	err = errno;
	close(fd);
	if (n < 0)
		report(name, path, "denied", err, "opened, but the read failed");
	else if (n == 0)
		report(name, path, "denied", 0, "empty (masked, or nothing to show)");
	else
		report(name, path, "allowed", 0, "read one byte");
}

/* The device of / as a block device node in tmp, and whether it can be read. */
static void probe_block_device(const char *tmp)
{
	struct stat st;
	char node[600], detail[256];
	char buf[512];
	int fd;
	if (stat("/", &st) < 0 || major(st.st_dev) == 0) {
		report("mknod_block_device", "/", "skipped", 0,
		       "the root filesystem has no block device (overlay, tmpfs)");
		report("read_host_disk", "/", "skipped", 0, "no block device to try");
		return;
	}
	snprintf(node, sizeof(node), "%s/disk", tmp);
	snprintf(detail, sizeof(detail), "block %u:%u (the device holding /)",
		 major(st.st_dev), minor(st.st_dev));
	if (mknod(node, S_IFBLK | 0600, st.st_dev) < 0) {
		report("mknod_block_device", node, "denied", errno, detail);
		report("read_host_disk", node, "skipped", 0, "no node could be made");
		return;
	}
	report("mknod_block_device", node, "allowed", 0, detail);
	fd = open(node, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		report("read_host_disk", node, "denied", errno, detail);
	} else {
		ssize_t n = read(fd, buf, sizeof(buf));
		int err = errno;
		close(fd);
		report("read_host_disk", node, n > 0 ? "allowed" : "denied", n > 0 ? 0 : err,
		       detail);
	}
	unlink(node);
}

/* release_agent of every cgroup v1 hierarchy mounted here, opened O_WRONLY. */
static void probe_release_agent(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int found = 0;
	if (!f) {
		report("cgroup_release_agent", "/proc/self/mountinfo", "skipped", errno, NULL);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char point[1024], fstype[64], path[1200];
		char *dash = strstr(line, " - ");
		int err;
		if (!dash || sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %1023s", point) != 1)
			continue;
		snprintf(path, sizeof(path), "%s/release_agent", point);
		if (access(path, F_OK) < 0)
			continue;
		found = 1;
		if (try_open_write(path, &err)) {
			report("cgroup_release_agent", path, "allowed", 0,
			       "opened for writing (nothing written)");
			fclose(f);
			return;
		}
	}
	fclose(f);
	if (found)
		report("cgroup_release_agent", "*/release_agent", "denied", EACCES,
		       "no release_agent of a mounted v1 hierarchy opened for writing");
	else
		report("cgroup_release_agent", "*/release_agent", "absent", ENOENT,
		       "no v1 hierarchy root (with release_agent) is mounted here");
}

/* Mount a v1 controller hierarchy read-write on tmp/cg: the step before a release_agent
 * escape (CVE-2022-0492). */
static void probe_cgroup_mount(const char *tmp)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[1024], controller[256] = "", dir[600], agent[700], detail[900];
	int err;
	while (f && fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (a && b && b > a + 1) {
			size_t n = (size_t)(b - a - 1);
			if (n >= sizeof(controller))
				n = sizeof(controller) - 1;
			memcpy(controller, a + 1, n);
			controller[n] = 0;
			if (strncmp(controller, "name=", 5))
				break; /* a real controller, not a named hierarchy */
			controller[0] = 0;
		}
	}
	if (f)
		fclose(f);
	if (!controller[0]) {
		report("mount_cgroup_v1", "cgroup", "absent", 0, "no v1 controller in /proc/self/cgroup");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/cg", tmp);
	if (mkdir(dir, 0700) < 0) {
		report("mount_cgroup_v1", controller, "skipped", errno, "cannot make a mount point");
		return;
	}
	if (mount("cgroup", dir, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, controller) < 0) {
		report("mount_cgroup_v1", controller, "denied", errno, NULL);
		rmdir(dir);
		return;
	}
	snprintf(agent, sizeof(agent), "%s/release_agent", dir);
	if (access(agent, F_OK) < 0) {
		/* Only a hierarchy's root has release_agent: this is the root of the caller's
		 * cgroup namespace, its own subtree, which it may manage. */
		umount2(dir, MNT_DETACH);
		rmdir(dir);
		report("mount_cgroup_v1", controller, "contained", 0,
		       "mounted read-write, but only the container's own subtree (no release_agent)");
		return;
	}
	if (try_open_write(agent, &err))
		snprintf(detail, sizeof(detail),
			 "mounted the hierarchy root read-write and release_agent opened for writing "
			 "(hierarchy %s)", controller);
	else
		snprintf(detail, sizeof(detail),
			 "mounted the hierarchy root read-write; release_agent refused (%s) "
			 "(hierarchy %s)", errname(err), controller);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	report("mount_cgroup_v1", controller, "allowed", 0, detail);
}

/* Try to make the read-only mount at path writable again, and if that works, whether
 * check (a host-wide knob below it) can then be opened for writing. A privileged
 * container's root can (it holds CAP_SYS_ADMIN over the mount): "allowed". In a user
 * namespace the remount may work on the container's own fresh mounts, but the files below
 * stay the host root's: "contained". Undone at once; nothing below it is written. */
static void probe_remount_rw(const char *name, const char *path, const char *check)
{
	int err;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], point[1024], opts[512] = "", these[512];
	unsigned long flags = 0;
	char *opt, *save = NULL;
	int found = 0;
	while (f && fgets(line, sizeof(line), f)) {
		/* the last line for path is the visible mount */
		if (sscanf(line, "%*s %*s %*s %*s %1023s %511s", point, these) == 2 &&
		    !strcmp(point, path)) {
			found = 1;
			snprintf(opts, sizeof(opts), "%s", these);
		}
	}
	if (f)
		fclose(f);
	if (!found) {
		report(name, path, "absent", 0, "not a mount point here");
		return;
	}
	snprintf(line, sizeof(line), "%s", opts);
	if (strncmp(opts, "ro", 2) || (opts[2] && opts[2] != ',')) {
		report(name, path, "allowed", 0, "mounted read-write already");
		return;
	}
	for (opt = strtok_r(line, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		if (!strcmp(opt, "nosuid"))
			flags |= MS_NOSUID;
		else if (!strcmp(opt, "nodev"))
			flags |= MS_NODEV;
		else if (!strcmp(opt, "noexec"))
			flags |= MS_NOEXEC;
		else if (!strcmp(opt, "noatime"))
			flags |= MS_NOATIME;
		else if (!strcmp(opt, "nodiratime"))
			flags |= MS_NODIRATIME;
		else if (!strcmp(opt, "relatime"))
			flags |= MS_RELATIME;
		else if (!strcmp(opt, "strictatime"))
			flags |= MS_STRICTATIME;
	}
	if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags, NULL) < 0) {
		report(name, path, "denied", errno, opts);
		return;
	}
	if (try_open_write(check, &err)) {
		mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL);
		report(name, path, "allowed", 0,
		       "remounted read-write and then opened a host knob for writing "
		       "(nothing written; read-only again)");
		return;
	}
	mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL);
	report(name, path, err == ENOENT ? "allowed" : "contained", err,
	       err == ENOENT ? "remounted read-write; no knob below to try (read-only again)"
			     : "remounted read-write, but its host knobs stay refused (read-only again)");
}

/* A system call with arguments the kernel refuses after its permission check:
 * an errno in `reached` (or success) means the call got past the filter and the
 * capability check. ENOSYS means this kernel (or a filter returning ENOSYS) lacks it. */
static void probe_syscall(const char *name, long ret, int err, int enosys_is_filter)
{
	if (ret >= 0) {
		report(name, "syscall", "allowed", 0, "the call succeeded");
	} else if (err == EPERM || err == EACCES) {
		report(name, "syscall", "denied", err, NULL);
	} else if (err == ENOSYS) {
		report(name, "syscall", enosys_is_filter ? "denied" : "absent", err,
		       enosys_is_filter ? "ENOSYS: filtered (or a kernel without it)"
					: "the kernel lacks this call");
	} else {
		report(name, "syscall", "allowed", err,
		       "reached the kernel's argument checks: not filtered and privileged enough");
	}
}

#define TRY(name, call, filter_enosys)                                                   \
	do {                                                                             \
		long _r;                                                                 \
		errno = 0;                                                               \
		_r = (call);                                                             \
		probe_syscall(name, _r, errno, filter_enosys);                           \
	} while (0)

static void probe_syscalls(void)
{
	struct {
		unsigned int handle_bytes;
		int handle_type;
	} handle = {0, 0};
#ifdef SYS_kexec_load
	/* flags 0x100 is no KEXEC_* flag: EINVAL right after the CAP_SYS_BOOT check. */
	TRY("kexec_load", syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x100UL), 0);
#endif
#ifdef SYS_init_module
	/* An empty image: ENOEXEC right after the CAP_SYS_MODULE check. */
	TRY("init_module", syscall(SYS_init_module, NULL, 0UL, ""), 0);
#endif
#ifdef SYS_finit_module
	TRY("finit_module", syscall(SYS_finit_module, -1, "", 0), 0);
#endif
#ifdef SYS_delete_module
	TRY("delete_module", syscall(SYS_delete_module, "richc_probe_no_such_module", 0), 0);
#endif
#ifdef SYS_open_by_handle_at
	/* A zero-length handle: EINVAL once CAP_DAC_READ_SEARCH is granted. */
	TRY("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, &handle, O_RDONLY), 0);
#endif
#ifdef SYS_bpf
	TRY("bpf", syscall(SYS_bpf, 0x7fffffff, NULL, 0), 0);
#endif
#ifdef SYS_perf_event_open
	TRY("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0UL), 0);
#endif
#ifdef SYS_userfaultfd
	TRY("userfaultfd", syscall(SYS_userfaultfd, 0x40000000), 0);
#endif
#ifdef SYS_keyctl
	TRY("keyctl", syscall(SYS_keyctl, 0x7fff, 0, 0, 0, 0), 0);
#endif
#ifdef SYS_swapoff
	TRY("swapoff", syscall(SYS_swapoff, NULL), 0);
#endif
#ifdef SYS_acct
	TRY("acct", syscall(SYS_acct, (const char *)1), 0);
#endif
#ifdef SYS_io_uring_setup
	TRY("io_uring_setup", syscall(SYS_io_uring_setup, 0, NULL), 1);
#endif
	/* A forced unmount of nothing: ENOENT if MNT_FORCE gets through. */
	TRY("umount2_force", umount2("/richc-probe-no-such-mount", MNT_FORCE), 0);
}

static void status_field(const char *key, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[512];
	size_t n = strlen(key);
	out[0] = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, n) && line[n] == ':') {
			char *v = line + n + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = 0;
			snprintf(out, size, "%s", v);
			break;
		}
	}
	if (f)
		fclose(f);
}

static void first_line(const char *path, char *out, size_t size)
{
	FILE *f = fopen(path, "re");
	out[0] = 0;
	if (f && fgets(out, (int)size, f))
		out[strcspn(out, "\n")] = 0;
	if (f)
		fclose(f);
}

static void print_info(void)
{
	char uid_map[256], gid_map[256], seccomp[64], filters[64], cap_eff[64], nnp[16];
	char comm[64];
	long inside = -1, outside = -1, count = -1;
	int pids = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
			pids++;
	if (d)
		closedir(d);
	first_line("/proc/self/uid_map", uid_map, sizeof(uid_map));
	first_line("/proc/self/gid_map", gid_map, sizeof(gid_map));
	first_line("/proc/1/comm", comm, sizeof(comm));
	sscanf(uid_map, "%ld %ld %ld", &inside, &outside, &count);
	status_field("Seccomp", seccomp, sizeof(seccomp));
	status_field("Seccomp_filters", filters, sizeof(filters));
	status_field("CapEff", cap_eff, sizeof(cap_eff));
	status_field("NoNewPrivs", nnp, sizeof(nnp));
	printf("  \"info\": {\"uid_map\": ");
	json_string(uid_map);
	printf(", \"gid_map\": ");
	json_string(gid_map);
	printf(", \"root_host_uid\": %ld, \"mapped_ids\": %ld", inside == 0 ? outside : -1, count);
	printf(", \"seccomp\": ");
	json_string(seccomp);
	printf(", \"seccomp_filters\": ");
	json_string(filters);
	printf(", \"cap_eff\": ");
	json_string(cap_eff);
	printf(", \"no_new_privs\": ");
	json_string(nnp);
	printf(", \"pid1_comm\": ");
	json_string(comm);
	printf(", \"pids_visible\": %d, \"euid\": %d},\n", pids, (int)geteuid());
}

int main(int argc, char **argv)
{
	const char *tmpbase = NULL;
	char tmp[512];
	int do_mount = 1, do_mknod = 1, i;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tmp") && i + 1 < argc)
			tmpbase = argv[++i];
		else if (!strcmp(argv[i], "--no-mount"))
			do_mount = 0;
		else if (!strcmp(argv[i], "--no-mknod"))
			do_mknod = 0;
		else {
			fprintf(stderr, "usage: %s [--tmp DIR] [--no-mount] [--no-mknod]\n", argv[0]);
			return 2;
		}
	}
	if (!tmpbase)
		tmpbase = access("/tmp", W_OK) == 0 ? "/tmp" : (access("/run", W_OK) == 0 ? "/run" : "/");
	snprintf(tmp, sizeof(tmp), "%s/richc-probe-XXXXXX", tmpbase);
	if (!mkdtemp(tmp))
		tmp[0] = 0;

	printf("{\n");
	print_info();
	printf("  \"probes\": [");
	probe_open_write("write_sysrq_trigger", "/proc/sysrq-trigger");
	probe_open_write("write_core_pattern", "/proc/sys/kernel/core_pattern");
	probe_open_write("write_modprobe", "/proc/sys/kernel/modprobe");
	probe_tree_write("write_proc_sys_kernel", "/proc/sys/kernel", 1);
	probe_open_write("write_uevent_helper", "/sys/kernel/uevent_helper");
	/* Top level only: below are securityfs, debugfs and tracefs (see the head comment). */
	probe_tree_write("write_sys_kernel", "/sys/kernel", 0);
	probe_open_write("write_sys_kernel_mm_thp", "/sys/kernel/mm/transparent_hugepage/enabled");
	if (do_mount) {
		probe_remount_rw("remount_proc_sys_rw", "/proc/sys", "/proc/sys/kernel/core_pattern");
		probe_remount_rw("remount_sys_rw", "/sys",
				 "/sys/kernel/mm/transparent_hugepage/enabled");
	} else {
		report("remount_proc_sys_rw", "/proc/sys", "skipped", 0, "--no-mount");
		report("remount_sys_rw", "/sys", "skipped", 0, "--no-mount");
	}
	probe_read("read_kcore", "/proc/kcore");
	probe_read("read_proc_keys", "/proc/keys");
	probe_read("read_timer_list", "/proc/timer_list");
	probe_read("read_sys_firmware", "/sys/firmware/acpi/tables/DSDT");
	if (!tmp[0]) {
		report("mknod_block_device", tmpbase, "skipped", errno,
		       "no temporary directory (give --tmp DIR, writable by this uid)");
	} else {
		if (do_mknod)
			probe_block_device(tmp);
		else
			report("mknod_block_device", tmp, "skipped", 0, "--no-mknod");
	}
	probe_release_agent();
	if (!tmp[0])
		report("mount_cgroup_v1", "cgroup", "skipped", 0, "no temporary directory");
	else if (do_mount)
		probe_cgroup_mount(tmp);
	else
		report("mount_cgroup_v1", "cgroup", "skipped", 0, "--no-mount");
	probe_syscalls();
	printf("\n  ]\n}\n");
	if (tmp[0])
		rmdir(tmp);
	return 0;
}
