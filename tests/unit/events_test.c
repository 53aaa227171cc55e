/* Tests for src/common/events.c: entity and event names, their enums and masks.
 *
 * The expected names are the guide's (seed/webhooks-guide.txt, "Event types"), typed in here
 * rather than taken from the code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/events.h"

struct event_case {
    int type;
    const char *name;
    unsigned entity; /* 0: none */
    enum hl_op op;   /* HL_OP_NONE: not a resource event */
};

static const struct event_case event_cases[] = {
    {HL_EV_AGENT_CREATED, "agent.created", HL_ENT_AGENT, HL_OP_CREATE},
    {HL_EV_AGENT_UPDATED, "agent.updated", HL_ENT_AGENT, HL_OP_UPDATE},
    {HL_EV_AGENT_DELETED, "agent.deleted", HL_ENT_AGENT, HL_OP_DELETE},
    {HL_EV_CONTEXT_CREATED, "context.created", HL_ENT_CONTEXT, HL_OP_CREATE},
    {HL_EV_CONTEXT_UPDATED, "context.updated", HL_ENT_CONTEXT, HL_OP_UPDATE},
    {HL_EV_CONTEXT_DELETED, "context.deleted", HL_ENT_CONTEXT, HL_OP_DELETE},
    {HL_EV_CONTEXTFILE_CREATED, "contextfile.created", HL_ENT_CONTEXTFILE, HL_OP_CREATE},
    {HL_EV_CONTEXTFILE_UPDATED, "contextfile.updated", HL_ENT_CONTEXTFILE, HL_OP_UPDATE},
    {HL_EV_CONTEXTFILE_DELETED, "contextfile.deleted", HL_ENT_CONTEXTFILE, HL_OP_DELETE},
    {HL_EV_WEBHOOK_TEST, "webhook.test", 0, HL_OP_NONE},
};
#define NEVENTS (sizeof(event_cases) / sizeof(event_cases[0]))

/* Parses from an exact-size copy so a read past len shows up under ASan. */
static int parse_event(const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    int t = hl_event_parse(copy, len);
    free(copy);
    return t;
}

static unsigned parse_entity(const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    unsigned e = hl_entity_parse(copy, len);
    free(copy);
    return e;
}

static void test_events_table(void **state)
{
    (void)state;
    assert_int_equal(NEVENTS, HL_EV_COUNT);
    unsigned resource_mask = 0;
    for (size_t i = 0; i < NEVENTS; i++) {
        const struct event_case *c = &event_cases[i];
        print_message("%s\n", c->name);
        assert_string_equal(hl_event_name(c->type), c->name);
        assert_int_equal(parse_event(c->name, strlen(c->name)), c->type);
        assert_int_equal(hl_event_entity(c->type), c->entity);
        if (c->op != HL_OP_NONE) {
            assert_true(c->type < HL_EV_RESOURCE_COUNT);
            assert_int_equal(hl_event_for(c->entity, c->op), c->type);
            /* the name starts with the entity's name */
            const char *ent = hl_entity_name(c->entity);
            assert_non_null(ent);
            assert_memory_equal(c->name, ent, strlen(ent));
            assert_int_equal(c->name[strlen(ent)], '.');
            resource_mask |= 1u << c->type;
        } else {
            assert_true(c->type >= HL_EV_RESOURCE_COUNT);
        }
    }
    /* the nine resource events are the nine low bits of an eventTypes mask */
    assert_int_equal(resource_mask, (1u << HL_EV_RESOURCE_COUNT) - 1);
    /* every type fits in an unsigned mask */
    assert_true(HL_EV_COUNT <= 32);
}

static void test_event_names_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "agent",
        "agent.",
        ".created",
        "agent.create",
        "agent.createdd",
        "Agent.created",
        "AGENT.CREATED",
        "agent.created ",
        " agent.created",
        "agent_created",
        "agents.created",
        "context.file.created",
        "contextFile.created",
        "webhook.tested",
        "webhook",
        "*",
        "agent.*",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("bad event \"%s\"\n", bad[i]);
        assert_int_equal(parse_event(bad[i], strlen(bad[i])), -1);
    }
    /* the length bounds the name: a prefix of a name is not the name, a NUL is not an end */
    assert_int_equal(parse_event("agent.created", 12), -1);
    assert_int_equal(parse_event("agent.created\0", 14), -1);
    assert_int_equal(parse_event("agent.createdXYZ", 13), HL_EV_AGENT_CREATED);
    /* out of range types */
    static const int out[] = {-1, HL_EV_COUNT, HL_EV_COUNT + 1, 1000, -1000};
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        assert_null(hl_event_name(out[i]));
        assert_int_equal(hl_event_entity(out[i]), 0);
    }
}

struct entity_case {
    const char *name;
    unsigned bit; /* 0: not an entity */
};

static const struct entity_case entity_cases[] = {
    {"agent", HL_ENT_AGENT},
    {"context", HL_ENT_CONTEXT},
    {"contextfile", HL_ENT_CONTEXTFILE},
    {"", 0},
    {"agents", 0},
    {"Agent", 0},
    {"contextFile", 0},
    {"context_file", 0},
    {"contextfiles", 0},
    {"context ", 0},
    {"age", 0},
    {"webhook", 0},
    {"all", 0},
    {"*", 0},
};

static void test_entities(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(entity_cases) / sizeof(entity_cases[0]); i++) {
        const struct entity_case *c = &entity_cases[i];
        print_message("entity \"%s\"\n", c->name);
        assert_int_equal(parse_entity(c->name, strlen(c->name)), c->bit);
        if (c->bit)
            assert_string_equal(hl_entity_name(c->bit), c->name);
    }
    /* "context" is a prefix of "contextfile": the length decides */
    assert_int_equal(parse_entity("contextfile", 7), HL_ENT_CONTEXT);
    assert_int_equal(parse_entity("contextfile", 11), HL_ENT_CONTEXTFILE);
    assert_int_equal(parse_entity("agent\0", 6), 0);
    /* one name per single bit; anything else has none */
    static const unsigned not_one[] = {0, 3, 5, 6, HL_ENT_ALL, 8, 16, 0x80000000u};
    for (size_t i = 0; i < sizeof(not_one) / sizeof(not_one[0]); i++)
        assert_null(hl_entity_name(not_one[i]));
    /* the mask of every entity */
    assert_int_equal(HL_ENT_AGENT | HL_ENT_CONTEXT | HL_ENT_CONTEXTFILE, HL_ENT_ALL);
    assert_int_equal(HL_ENT_AGENT & HL_ENT_CONTEXT, 0);
    assert_int_equal(HL_ENT_AGENT & HL_ENT_CONTEXTFILE, 0);
    assert_int_equal(HL_ENT_CONTEXT & HL_ENT_CONTEXTFILE, 0);
}

/* Masks as fan-out uses them: an event matches entities when its entity bit is in the mask. */
static void test_masks(void **state)
{
    (void)state;
    for (unsigned ents = 0; ents <= HL_ENT_ALL; ents++) {
        int matching = 0;
        for (int t = 0; t < HL_EV_RESOURCE_COUNT; t++)
            if (hl_event_entity(t) & ents)
                matching++;
        /* three events per entity */
        assert_int_equal(matching, 3 * __builtin_popcount(ents));
    }
    /* webhook.test belongs to no entity, so no entities mask selects it */
    assert_int_equal(hl_event_entity(HL_EV_WEBHOOK_TEST) & HL_ENT_ALL, 0);
    /* no operation, no event */
    static const unsigned ents[] = {HL_ENT_AGENT, HL_ENT_CONTEXT, HL_ENT_CONTEXTFILE};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(hl_event_for(ents[i], HL_OP_NONE), -1);
        assert_int_equal(hl_event_for(ents[i], (enum hl_op)99), -1);
    }
}

/* Regression (was a bug in src/common/events.c, hl_event_for): an entity that is not exactly one of
 * the three bits (0, HL_ENT_ALL, 8, ...) falls through to the contextfile row, so hl_event_for(0,
 * HL_OP_CREATE) gives HL_EV_CONTEXTFILE_CREATED; it should give -1, as an unknown operation does.
 */
static void test_event_for_unknown_entity(void **state)
{
    (void)state;
    static const unsigned bad[] = {0, 3, HL_ENT_ALL, 8, 0xffffffffu};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("entity %#x\n", bad[i]);
        assert_int_equal(hl_event_for(bad[i], HL_OP_CREATE), -1);
        assert_int_equal(hl_event_for(bad[i], HL_OP_DELETE), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_table),
        cmocka_unit_test(test_event_names_bad),
        cmocka_unit_test(test_entities),
        cmocka_unit_test(test_masks),
        cmocka_unit_test(test_event_for_unknown_entity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
