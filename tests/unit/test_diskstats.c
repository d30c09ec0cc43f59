/*
 * test_diskstats: common/diskstats.c on fixed /proc/diskstats and
 * /proc/self/mountinfo text (every kernel's line width, partitions, missing
 * and malformed lines, counters that go backwards, longest-prefix mounts and
 * escaped mount points), then the live readers on this machine's "/".
 * Reads only; creates no files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "diskstats.h"

/* |got - want| <= eps, in double precision (cmocka's float compare is float). */
#define s_near(got, want, eps) s_near_at((got), (want), (eps), #got, __LINE__)
static void s_near_at(double got, double want, double eps, const char *what, int line)
{
    double d = got > want ? got - want : want - got;
    if (d > eps)
        fail_msg("line %d: %s = %.9g, want %.9g", line, what, got, want);
}

/* 14 fields (Linux < 4.18), 18 (4.18+, discards), 20 (5.5+, flushes),
 * partitions, an old 7-field partition line, and some broken lines. */
static const char s_diskstats[] =
    "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   8       0 sda 1000 10 20000 300 2000 20 40000 600 0 900 1200\n"
    "   8       1 sda1 500 5 10000 150 1000 10 20000 300 2 450 600 7 0 56 3\n"
    "   8       2 sda2 400 4 8000 120 900 9 18000 280 0 400 500 0 0 0 0 11 12\n"
    "   8      16 sdb 11 0 22 0 33 0 44 0 0 55 0\n"
    "   8      17 sdb1 11 22 33 44\n"
    "   8      32 sdc 1 2 x 4 5 6 7 8 9 10 11\n"
    "   8      48 sdd 1 2 3 4 5 6 7 8 9 10\n"
    "   8      64 sde 1 2 -3 4 5 6 7 8 9 10 11\n"
    "   8      80 sdf 1 2 99999999999999999999999 4 5 6 7 8 9 10 11\n"
    "garbage line\n"
    "\n"
    " 254       0 vda 31185 8200 2468082 47677 9508 6015 635640 13951 0 28372 62410 6468 54 "
    "255784 714 1396 67\n"
    " 259       0 nvme0n1 7 0 8 0 9 0 10 0 0 11 0 0 0 0 0"; /* no final newline */

static void test_parse_14_fields(void **state)
{
    diskstats_dev_t d;
    assert_true(diskstats_parse(s_diskstats, 8, 0, &d));
    assert_int_equal(d.major, 8);
    assert_int_equal(d.minor, 0);
    assert_string_equal(d.name, "sda");
    assert_int_equal(d.reads_completed, 1000);
    assert_int_equal(d.sectors_read, 20000);
    assert_int_equal(d.writes_completed, 2000);
    assert_int_equal(d.sectors_written, 40000);
    assert_int_equal(d.io_ticks_ms, 900);
}

static void test_parse_18_and_20_fields(void **state)
{
    diskstats_dev_t d;
    assert_true(diskstats_parse(s_diskstats, 8, 1, &d));
    assert_string_equal(d.name, "sda1");
    assert_int_equal(d.reads_completed, 500);
    assert_int_equal(d.sectors_read, 10000);
    assert_int_equal(d.writes_completed, 1000);
    assert_int_equal(d.sectors_written, 20000);
    assert_int_equal(d.io_ticks_ms, 450);

    assert_true(diskstats_parse(s_diskstats, 8, 2, &d));
    assert_string_equal(d.name, "sda2");
    assert_int_equal(d.sectors_written, 18000);
    assert_int_equal(d.io_ticks_ms, 400);

    assert_true(diskstats_parse(s_diskstats, 254, 0, &d));
    assert_string_equal(d.name, "vda");
    assert_int_equal(d.reads_completed, 31185);
    assert_int_equal(d.sectors_read, 2468082);
    assert_int_equal(d.writes_completed, 9508);
    assert_int_equal(d.sectors_written, 635640);
    assert_int_equal(d.io_ticks_ms, 28372);

    /* Last line without a newline. */
    assert_true(diskstats_parse(s_diskstats, 259, 0, &d));
    assert_string_equal(d.name, "nvme0n1");
    assert_int_equal(d.io_ticks_ms, 11);
}

static void test_parse_exact_device(void **state)
{
    diskstats_dev_t d;
    /* 8:16 must not be confused with 8:1 or 18:x. */
    assert_true(diskstats_parse(s_diskstats, 8, 16, &d));
    assert_string_equal(d.name, "sdb");
    assert_int_equal(d.reads_completed, 11);
    assert_int_equal(d.io_ticks_ms, 55);
}

static void test_parse_missing_and_malformed(void **state)
{
    diskstats_dev_t d;
    memset(&d, 0xAB, sizeof d);
    diskstats_dev_t before = d;
    assert_false(diskstats_parse(s_diskstats, 8, 3, &d));    /* absent */
    assert_false(diskstats_parse(s_diskstats, 18, 0, &d));   /* absent */
    assert_false(diskstats_parse(s_diskstats, 8, 17, &d));   /* 4 stat fields */
    assert_false(diskstats_parse(s_diskstats, 8, 32, &d));   /* not a number */
    assert_false(diskstats_parse(s_diskstats, 8, 48, &d));   /* 10 stat fields */
    assert_false(diskstats_parse(s_diskstats, 8, 64, &d));   /* negative */
    assert_false(diskstats_parse(s_diskstats, 8, 80, &d));   /* overflow */
    assert_memory_equal(&d, &before, sizeof d);               /* untouched */
    assert_false(diskstats_parse("", 8, 0, &d));
    assert_false(diskstats_parse("   8       0\n", 8, 0, &d));
    assert_false(diskstats_parse(NULL, 8, 0, &d));

    /* A name longer than the struct holds is refused, not truncated. */
    char line[256];
    snprintf(line, sizeof line, "8 0 %070d 1 2 3 4 5 6 7 8 9 10 11\n", 0);
    assert_false(diskstats_parse(line, 8, 0, &d));
}

static void test_rates(void **state)
{
    diskstats_dev_t a = {.sectors_read = 1000, .sectors_written = 4000,
                         .reads_completed = 10, .writes_completed = 100, .io_ticks_ms = 100};
    diskstats_dev_t b = {.sectors_read = 3000, .sectors_written = 8000,
                         .reads_completed = 30, .writes_completed = 300, .io_ticks_ms = 600};
    diskstats_rates_t r;
    diskstats_rates(&a, &b, 2000, &r);
    s_near(r.read_bytes_per_sec, 2000.0 * 512 / 2, 1e-6);
    s_near(r.write_bytes_per_sec, 4000.0 * 512 / 2, 1e-6);
    s_near(r.read_iops, 10.0, 1e-9);
    s_near(r.write_iops, 100.0, 1e-9);
    s_near(r.util_percent, 25.0, 1e-9);

    /* Busier than wall time (io_ticks granularity) is clamped to 100. */
    b.io_ticks_ms = 100 + 5000;
    diskstats_rates(&a, &b, 2000, &r);
    s_near(r.util_percent, 100.0, 1e-9);

    /* Nothing happened. */
    diskstats_rates(&a, &a, 1000, &r);
    s_near(r.read_bytes_per_sec, 0.0, 0);
    s_near(r.util_percent, 0.0, 0);
}

static void test_rates_backwards_and_zero_time(void **state)
{
    diskstats_dev_t a = {.sectors_read = 5000, .sectors_written = 10,
                         .reads_completed = 50, .writes_completed = 1, .io_ticks_ms = 900};
    diskstats_dev_t b = {.sectors_read = 100, .sectors_written = 20,
                         .reads_completed = 5, .writes_completed = 2, .io_ticks_ms = 10};
    diskstats_rates_t r;
    /* Device replaced or counters reset: the ones that went back read 0. */
    diskstats_rates(&a, &b, 1000, &r);
    s_near(r.read_bytes_per_sec, 0.0, 0);
    s_near(r.read_iops, 0.0, 0);
    s_near(r.util_percent, 0.0, 0);
    s_near(r.write_bytes_per_sec, 10.0 * 512, 1e-9);
    s_near(r.write_iops, 1.0, 1e-9);

    /* 64-bit wrap in the other direction is "backwards" too, never huge. */
    a.sectors_read = UINT64_MAX;
    b.sectors_read = 0;
    diskstats_rates(&a, &b, 1000, &r);
    s_near(r.read_bytes_per_sec, 0.0, 0);

    /* Zero elapsed time: no division, all zeros. */
    memset(&r, 0xFF, sizeof r);
    diskstats_rates(&b, &a, 0, &r);
    s_near(r.read_bytes_per_sec, 0.0, 0);
    s_near(r.write_iops, 0.0, 0);
    s_near(r.util_percent, 0.0, 0);
}

static const char s_mountinfo[] =
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "30 27 8:17 / /data rw,relatime shared:5 master:2 - xfs /dev/sdb1 rw\n"
    "31 30 253:0 / /data/pg rw,noatime - ext4 /dev/mapper/vg-pg rw\n"
    "32 27 8:33 / /mnt/my\\040disk rw - ext4 /dev/sdc1 rw\n"
    "33 27 8:49 /sub /mnt/my rw - ext4 /dev/sdd1 rw\n"
    "34 27 0:50 / /ovl rw - overlay overlay rw,lowerdir=/a\n"
    "35 27 0:51 / /tmpdir rw - tmpfs tmpfs rw\n"
    "36 27 8:65 / /stack rw - ext4 /dev/sde1 rw\n"
    "37 36 8:81 / /stack rw - ext4 /dev/sdf1 rw\n"
    "38 27 8:97 / /tab\\011and\\134slash rw - ext4 /dev/sdg1 rw\n"
    "broken line\n"
    "39 27 nocolon / /broken rw - ext4 /dev/sdh1 rw\n"
    "40 27 8:113 / /nosep rw ext4 /dev/sdh1 rw\n";

static void s_expect_dev(const char *mi, const char *path, unsigned ma, unsigned mi_)
{
    unsigned major = 0, minor = 0;
    if (!diskstats_mountinfo_device(mi, path, &major, &minor))
        fail_msg("no device for %s", path);
    if (major != ma || minor != mi_)
        fail_msg("%s: got %u:%u, want %u:%u", path, major, minor, ma, mi_);
}

static void test_mountinfo_longest_prefix(void **state)
{
    s_expect_dev(s_mountinfo, "/", 8, 1);
    s_expect_dev(s_mountinfo, "/etc/passwd", 8, 1);
    s_expect_dev(s_mountinfo, "/data", 8, 17);
    s_expect_dev(s_mountinfo, "/data/", 8, 17);
    s_expect_dev(s_mountinfo, "/data/other", 8, 17);
    s_expect_dev(s_mountinfo, "/data/pg", 253, 0);
    s_expect_dev(s_mountinfo, "/data/pg/15/main", 253, 0);
    /* A shared prefix that is not a path component does not count. */
    s_expect_dev(s_mountinfo, "/database", 8, 1);
    s_expect_dev(s_mountinfo, "/data/pgx", 8, 17);
    /* Stacked mounts: the later one is visible. */
    s_expect_dev(s_mountinfo, "/stack/x", 8, 81);
    /* Malformed lines are skipped, the parent mount answers. */
    s_expect_dev(s_mountinfo, "/broken/x", 8, 1);
    s_expect_dev(s_mountinfo, "/nosep", 8, 1);
}

static void test_mountinfo_escapes(void **state)
{
    s_expect_dev(s_mountinfo, "/mnt/my disk", 8, 33);
    s_expect_dev(s_mountinfo, "/mnt/my disk/pgdata", 8, 33);
    s_expect_dev(s_mountinfo, "/mnt/my", 8, 49);
    s_expect_dev(s_mountinfo, "/mnt/my/x", 8, 49);
    s_expect_dev(s_mountinfo, "/mnt/mydisk", 8, 1);
    s_expect_dev(s_mountinfo, "/tab\tand\\slash/x", 8, 97);
}

static void test_mountinfo_none(void **state)
{
    unsigned ma = 7, mi = 7;
    /* Anonymous devices whose source is not a /dev node have no device. */
    assert_false(diskstats_mountinfo_device(s_mountinfo, "/ovl/x", &ma, &mi));
    assert_false(diskstats_mountinfo_device(s_mountinfo, "/tmpdir", &ma, &mi));
    assert_false(diskstats_mountinfo_device(s_mountinfo, "/proc/1", &ma, &mi));
    assert_false(diskstats_mountinfo_device(s_mountinfo, "relative/path", &ma, &mi));
    assert_false(diskstats_mountinfo_device("", "/", &ma, &mi));
    assert_false(diskstats_mountinfo_device("22 27 0:21 / /proc rw - proc proc rw\n", "/", &ma,
                                            &mi));
    assert_int_equal(ma, 7);
    assert_int_equal(mi, 7);
}

/* Finds any block device node under /dev, or returns false. */
static bool s_find_block_node(char *path, size_t len, dev_t *rdev)
{
    DIR *d = opendir("/dev");
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        struct stat st;
        snprintf(path, len, "/dev/%s", e->d_name);
        if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
            *rdev = st.st_rdev;
            found = true;
        }
    }
    closedir(d);
    return found;
}

static void test_mountinfo_anonymous_resolves_source(void **state)
{
    char node[512];
    dev_t rdev;
    if (!s_find_block_node(node, sizeof node, &rdev))
        skip();
    /* btrfs: st_dev is anonymous (0:N); the device is the source node's. */
    char text[1024];
    snprintf(text, sizeof text,
             "27 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
             "50 27 0:45 /@pg /srv/pg rw - btrfs %s rw,subvol=/@pg\n"
             "51 27 0:46 / /srv/gone rw - btrfs /dev/godwit-no-such-node rw\n",
             node);
    s_expect_dev(text, "/srv/pg/base", major(rdev), minor(rdev));
    unsigned ma, mi;
    assert_false(diskstats_mountinfo_device(text, "/srv/gone", &ma, &mi));
}

static void test_live_root(void **state)
{
    unsigned ma = 0, mi = 0;
    assert_int_equal(diskstats_device_for_path("/", &ma, &mi), 0);

    diskstats_dev_t d;
    int rc = diskstats_read(ma, mi, &d);
    if (rc == 0) {
        assert_int_equal(d.major, ma);
        assert_int_equal(d.minor, mi);
        assert_true(d.name[0] != '\0');
    } else {
        /* A device the kernel keeps no statistics for. */
        assert_int_equal(rc, -ENODEV);
    }

    diskstats_fs_t fs;
    assert_int_equal(diskstats_fs("/", &fs), 0);
    assert_true(fs.size_bytes > 0);
    assert_true(fs.free_bytes <= fs.size_bytes);
}

static void test_live_errors(void **state)
{
    unsigned ma, mi;
    diskstats_fs_t fs;
    diskstats_dev_t d;
    assert_int_equal(diskstats_device_for_path("/godwit/no/such/path", &ma, &mi), -ENOENT);
    assert_int_equal(diskstats_fs("/godwit/no/such/path", &fs), -ENOENT);
    /* /proc has no block device, whatever the mount table says about it. */
    assert_int_equal(diskstats_device_for_path("/proc", &ma, &mi), -ENODEV);
    assert_int_equal(diskstats_read(4095, 1048575, &d), -ENODEV);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_14_fields),
        cmocka_unit_test(test_parse_18_and_20_fields),
        cmocka_unit_test(test_parse_exact_device),
        cmocka_unit_test(test_parse_missing_and_malformed),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_rates_backwards_and_zero_time),
        cmocka_unit_test(test_mountinfo_longest_prefix),
        cmocka_unit_test(test_mountinfo_escapes),
        cmocka_unit_test(test_mountinfo_none),
        cmocka_unit_test(test_mountinfo_anonymous_resolves_source),
        cmocka_unit_test(test_live_root),
        cmocka_unit_test(test_live_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
