/*
 * test_protect: when the coordinator must protect a migration's source
 * (coordinator/migration.c, migration_source_at_risk), from an agent report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "migration.h"

typedef struct {
    Godwit__Report rep;
    Godwit__Disk disk;
    Godwit__Postgres pg;
    Godwit__Slot slot, other;
    Godwit__Slot *slots[2];
} fixture_t;

static void s_fixture(fixture_t *f, uint64_t retained, double wal_rate, uint64_t free_bytes)
{
    godwit__report__init(&f->rep);
    godwit__disk__init(&f->disk);
    godwit__postgres__init(&f->pg);
    godwit__slot__init(&f->slot);
    godwit__slot__init(&f->other);
    f->rep.interval_ms = 1000;
    f->rep.disk = &f->disk;
    f->rep.postgres = &f->pg;
    f->disk.ok = true;
    f->disk.free_bytes = free_bytes;
    f->pg.has_wal_rate = wal_rate > 0;
    f->pg.wal_bytes_per_sec = wal_rate;
    f->other.name = (char *)"someone_else";
    f->other.retained_bytes = UINT64_C(1) << 40; /* not ours: never a reason */
    f->slot.name = (char *)"godwit_shop";
    f->slot.retained_bytes = retained;
    f->slots[0] = &f->other;
    f->slots[1] = &f->slot;
    f->pg.n_slots = 2;
    f->pg.slots = f->slots;
}

static void test_slot_limit(void **state)
{
    (void)state;
    fixture_t f;
    char why[512] = "";
    const int64_t limit = 100 << 20;
    s_fixture(&f, 10 << 20, 0, UINT64_C(1) << 40);
    assert_false(migration_source_at_risk(&f.rep, "godwit_shop", limit, 0, 0, why, sizeof why));
    /* Over the limit. */
    s_fixture(&f, 101 << 20, 0, UINT64_C(1) << 40);
    assert_true(migration_source_at_risk(&f.rep, "godwit_shop", limit, 0, 0, why, sizeof why));
    assert_non_null(strstr(why, "godwit_shop"));
    /* Under it, but three intervals at 20 MiB/s would pass it: act now. */
    s_fixture(&f, 50 << 20, 20 << 20, UINT64_C(1) << 40);
    assert_true(migration_source_at_risk(&f.rep, "godwit_shop", limit, 0, 0, why, sizeof why));
    /* The same rate with room to spare: not yet. */
    s_fixture(&f, 10 << 20, 20 << 20, UINT64_C(1) << 40);
    assert_false(migration_source_at_risk(&f.rep, "godwit_shop", limit, 0, 0, why, sizeof why));
    /* Figures read 2 s ago at 20 MiB/s from 30 MiB: 30 + (3 + 2) x 20 >= 100. */
    s_fixture(&f, 30 << 20, 20 << 20, UINT64_C(1) << 40);
    f.pg.collected_at_ms = 1000000;
    assert_true(migration_source_at_risk(&f.rep, "godwit_shop", limit, 0, 1002000, why, sizeof why));
    /* ... but fresh, 30 + 3 x 20 < 100: not yet. */
    assert_false(migration_source_at_risk(&f.rep, "godwit_shop", limit, 0, 1000000, why, sizeof why));
    /* No limit configured: never. */
    s_fixture(&f, UINT64_C(1) << 40, 0, UINT64_C(1) << 40);
    assert_false(migration_source_at_risk(&f.rep, "godwit_shop", 0, 0, 0, why, sizeof why));
    /* No slot of ours in the report (not created yet, or gone): nothing. */
    assert_false(migration_source_at_risk(&f.rep, "godwit_other", limit, 0, 0, why, sizeof why));
    assert_false(migration_source_at_risk(NULL, "godwit_shop", limit, 0, 0, why, sizeof why));
}

static void test_disk_floor(void **state)
{
    (void)state;
    fixture_t f;
    char why[512] = "";
    s_fixture(&f, 0, 0, UINT64_C(4) << 30);
    assert_false(migration_source_at_risk(&f.rep, "godwit_shop", 0, (int64_t)2 << 30, 0,
                                          why, sizeof why));
    s_fixture(&f, 0, 0, 1u << 30);
    assert_true(migration_source_at_risk(&f.rep, "godwit_shop", 0, (int64_t)2 << 30, 0,
                                         why, sizeof why));
    assert_non_null(strstr(why, "source_disk_floor"));
    /* A disk the agent could not read is no reason to act. */
    f.disk.ok = false;
    assert_false(migration_source_at_risk(&f.rep, "godwit_shop", 0, (int64_t)2 << 30, 0,
                                          why, sizeof why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_limit),
        cmocka_unit_test(test_disk_floor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
