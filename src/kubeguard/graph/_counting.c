/* The activity recorder's per-event counting, compiled: what ActivityRecorder.observe does for an event whose
 * counter exists, without the interpreter.
 *
 * Keeping history is meant to cost a scan at most 15 % of its throughput. In Python the counting was about
 * 8,000 instructions an event (reading a dozen fields, building and hashing the key, comparing times), a
 * sixth of a scan; here it is a small fraction of that. It does exactly what the Python method does, and
 * hands the event back to it (the "fallback") whenever anything is out of the ordinary: no counter yet for
 * the key, a value that is not of the type the audit decoder gives (an event built by hand), a time that
 * is not ASCII. So the Python method stays the one definition of what is counted, and tests compare the
 * two over the same events. An event with a fact to derive (an exec, a write of a workload or binding) is
 * counted here and then handed to the recorder's fact derivation.
 *
 * Counter(calls, fallback, change_hour, facts) is one recorder's counting; its count(event) is the recorder's
 * observe:
 *   calls       the recorder's dict: key_hash(key tuple) -> counter list
 *               [dims, hours, first, last, hour, hour bound, count]
 *   fallback    ActivityRecorder.observe, bound (called with the event; its result is returned)
 *   change_hour ActivityRecorder._change_hour, bound (called with the counter and the time of an event in
 *               another hour whose time is too short to name an hour; the counter puts other hours away
 *               itself, and counts the roll-up cells they start in its ``cells``)
 *   facts       ActivityRecorder._observe_facts, bound (called with a counted event that has facts)
 * sync() writes what it counted back to the lists (before the recorder reads them), clear() forgets them
 * (when the recorder clears its dict) and sets ``cells`` back to 0.
 *
 * configure(event_type, ref_type, user_type, status_type, connect_subresources, write_verbs, fact_resources)
 * names the audit structs (the fields' slots are resolved in them once) and the sets that route an event to
 * the fallback; a Counter cannot be made before it is called.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "structmember.h"

/* Where each field read lives in its struct: msgspec keeps a Struct's fields in member slots, and these are
 * the offsets of their member descriptors, resolved once by configure(). Reading a slot is a load; going
 * through getattr cost about 115 instructions a field, as much as the interpreter's counting did. Every
 * read checks the object's exact type first, so a subclass or a hand-made object takes the fallback. */
typedef struct {
    const char *name;
    Py_ssize_t offset;
} field;

enum {
    E_STAGE_TIMESTAMP, E_RECEIVED_TIMESTAMP, E_TIMESTAMP, E_OBJECT_REF, E_RESPONSE_STATUS, E_SOURCE_IPS, E_VERB,
    E_REQUEST_URI, E_CLUSTER, E_USER, E_USER_AGENT, EVENT_FIELDS
};
enum { R_RESOURCE, R_SUBRESOURCE, R_NAMESPACE, R_NAME, REF_FIELDS };
enum { U_USERNAME, USER_FIELDS };
enum { S_CODE, STATUS_FIELDS };

static field event_fields[EVENT_FIELDS] = {
    {"stageTimestamp", 0}, {"requestReceivedTimestamp", 0}, {"timestamp", 0}, {"objectRef", 0},
    {"responseStatus", 0}, {"sourceIPs", 0}, {"verb", 0}, {"requestURI", 0}, {"cluster", 0}, {"user", 0},
    {"userAgent", 0},
};
static field ref_fields[REF_FIELDS] = {{"resource", 0}, {"subresource", 0}, {"namespace", 0}, {"name", 0}};
static field user_fields[USER_FIELDS] = {{"username", 0}};
static field status_fields[STATUS_FIELDS] = {{"code", 0}};

static PyTypeObject *event_type, *ref_type, *user_type, *status_type;

/* Subclasses of the event type seen to keep its fields where it keeps them (the decoder's record type adds
 * a field of its own after them), and how many. */
#define MAX_EVENT_SUBTYPES 8
static PyTypeObject *event_subtypes[MAX_EVENT_SUBTYPES];
static int event_subtype_count;
static PyObject *connect_subresources, *write_verbs, *fact_resources, *s_empty, *s_zero, *s_past_the_hour;

#define HOUR_LENGTH 13 /* "2026-11-20T10" */
#define COUNTER_FIELDS 7

/* The field's value (borrowed), or NULL when the slot is empty. The caller has checked the type. */
static inline PyObject *
slot(PyObject *obj, const field *fields, int which)
{
    return *(PyObject **)((char *)obj + fields[which].offset);
}

/* A borrowed str field, or NULL when the slot is empty or does not hold exactly a str. */
static inline PyObject *
str_slot(PyObject *obj, const field *fields, int which)
{
    PyObject *value = slot(obj, fields, which);
    return value != NULL && PyUnicode_CheckExact(value) ? value : NULL;
}

/* Resolves the offsets of ``fields`` in ``type``; -1 with an error when one is not an object slot of it. */
static int
resolve(PyTypeObject *type, field *fields, int count)
{
    for (int i = 0; i < count; i++) {
        PyObject *descr = PyObject_GetAttrString((PyObject *)type, fields[i].name);
        if (descr == NULL) {
            return -1;
        }
        int object_slot = Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                          ((PyMemberDescrObject *)descr)->d_common.d_type == type &&
                          (((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX ||
                           ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT);
        if (object_slot) {
            fields[i].offset = ((PyMemberDescrObject *)descr)->d_member->offset;
        }
        Py_DECREF(descr);
        if (!object_slot) {
            PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot", type->tp_name, fields[i].name);
            return -1;
        }
    }
    return 0;
}

/* Whether ``type`` reads the event's fields from the same slots as the event type: it is the event type, or a
 * subclass already checked, or one checked now (whose every field is the event type's own descriptor). */
static int
event_layout(PyTypeObject *type)
{
    if (type == event_type) {
        return 1;
    }
    for (int i = 0; i < event_subtype_count; i++) {
        if (event_subtypes[i] == type) {
            return 1;
        }
    }
    if (event_subtype_count == MAX_EVENT_SUBTYPES || !PyType_IsSubtype(type, event_type)) {
        return 0;
    }
    for (int i = 0; i < EVENT_FIELDS; i++) {
        PyObject *own = PyObject_GetAttrString((PyObject *)type, event_fields[i].name);
        PyObject *base = own == NULL ? NULL : PyObject_GetAttrString((PyObject *)event_type, event_fields[i].name);
        int same = own != NULL && own == base;
        Py_XDECREF(own);
        Py_XDECREF(base);
        if (!same) {
            PyErr_Clear();
            return 0;
        }
    }
    event_subtypes[event_subtype_count++] = (PyTypeObject *)Py_NewRef(type);
    return 1;
}

static int
is_ascii(PyObject *text)
{
    return PyUnicode_CheckExact(text) && PyUnicode_IS_COMPACT_ASCII(text);
}

/* The request path without its query (a new reference), or NULL with an error set. */
static PyObject *
path_of(PyObject *uri)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(uri);
    Py_ssize_t at = PyUnicode_FindChar(uri, '?', 0, length, 1);
    if (at == -2) {
        return NULL;
    }
    if (at < 0) {
        return Py_NewRef(uri);
    }
    return PyUnicode_Substring(uri, 0, at);
}

enum { COUNTED, COUNTED_WITH_FACTS, FALL_BACK, FAILED };

#define KEY_VALUES 11

/* The hash of a key's values, combined as CPython combines a tuple's (xxHash's round) but without the tuple:
 * building one per event took a reference to each value and dropped it, a write to each string's header,
 * and on events no longer in the processor's cache that was two fifths of this module's time. The recorder
 * keys its counters by this hash when it counts here (``key_hash`` is the same function for a tuple). */
static Py_hash_t
combine(PyObject *const *values, Py_ssize_t count)
{
    Py_uhash_t acc = (Py_uhash_t)2870177450012600261ULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_hash_t lane = PyObject_Hash(values[i]);
        if (lane == -1) {
            return -1;
        }
        acc += (Py_uhash_t)lane * (Py_uhash_t)14029467366897019727ULL;
        acc = (acc << 31) | (acc >> 33);
        acc *= (Py_uhash_t)11400714785074694791ULL;
    }
    acc += (Py_uhash_t)count ^ (Py_uhash_t)(2870177450012600261ULL ^ 3527539UL);
    return acc == (Py_uhash_t)-1 ? 1546275796 : (Py_hash_t)acc;
}

/* The hash of the event's key (the values of ActivityRecorder.observe's key tuple, in its order): COUNTED
 * or COUNTED_WITH_FACTS (the event has facts to derive) with ``*hash`` and ``*stamp`` (the event's time,
 * borrowed) set; FALL_BACK when the event must go to the fallback; FAILED with an error set. */
static int
hash_of(PyObject *event, Py_hash_t *hash, PyObject **stamp)
{
    int fact = 0;
    if (!event_layout(Py_TYPE(event))) {
        return FALL_BACK;
    }
    PyObject *time = NULL;
    for (int which = E_STAGE_TIMESTAMP; which <= E_TIMESTAMP; which++) {
        if ((time = str_slot(event, event_fields, which)) == NULL) {
            return FALL_BACK;
        }
        if (PyUnicode_GET_LENGTH(time) > 0) {
            break;
        }
    }
    PyObject *verb = str_slot(event, event_fields, E_VERB);
    PyObject *ref = slot(event, event_fields, E_OBJECT_REF);
    PyObject *status = slot(event, event_fields, E_RESPONSE_STATUS);
    PyObject *ips = slot(event, event_fields, E_SOURCE_IPS);
    PyObject *cluster = str_slot(event, event_fields, E_CLUSTER);
    PyObject *agent = str_slot(event, event_fields, E_USER_AGENT);
    PyObject *user = slot(event, event_fields, E_USER);
    if (!PyUnicode_IS_COMPACT_ASCII(time) || verb == NULL || ref == NULL || status == NULL || ips == NULL ||
        !PyList_CheckExact(ips) || cluster == NULL || agent == NULL || user == NULL || !Py_IS_TYPE(user, user_type)) {
        return FALL_BACK;
    }
    PyObject *username = str_slot(user, user_fields, U_USERNAME);
    PyObject *code = s_zero;
    if (status != Py_None) {
        if (!Py_IS_TYPE(status, status_type)) {
            return FALL_BACK;
        }
        code = slot(status, status_fields, S_CODE);
    }
    PyObject *ip = s_empty;
    if (PyList_GET_SIZE(ips) > 0) {
        ip = PyList_GET_ITEM(ips, 0);
    }
    if (username == NULL || code == NULL || !PyLong_CheckExact(code) || !PyUnicode_CheckExact(ip)) {
        return FALL_BACK;
    }
    PyObject *resource = s_empty, *subresource = s_empty, *namespace = s_empty, *name = s_empty;
    if (ref != Py_None) {
        if (!Py_IS_TYPE(ref, ref_type)) {
            return FALL_BACK;
        }
        resource = str_slot(ref, ref_fields, R_RESOURCE);
        subresource = str_slot(ref, ref_fields, R_SUBRESOURCE);
        namespace = str_slot(ref, ref_fields, R_NAMESPACE);
        name = str_slot(ref, ref_fields, R_NAME);
        if (resource == NULL || subresource == NULL || namespace == NULL || name == NULL) {
            return FALL_BACK;
        }
        /* A fact to derive: an exec or attach, or a write of a workload or binding. */
        if (PyUnicode_GET_LENGTH(subresource) > 0) {
            fact = PySet_Contains(connect_subresources, subresource);
        }
        else {
            fact = PySet_Contains(write_verbs, verb);
            if (fact == 1) {
                fact = PySet_Contains(fact_resources, resource);
            }
        }
        if (fact < 0) {
            return FAILED;
        }
    }
    PyObject *path;
    if (PyUnicode_GET_LENGTH(resource) > 0) {
        path = Py_NewRef(s_empty);
    }
    else {
        PyObject *uri = str_slot(event, event_fields, E_REQUEST_URI);
        if (uri == NULL) {
            return FALL_BACK;
        }
        if ((path = path_of(uri)) == NULL) {
            return FAILED;
        }
    }
    PyObject *const values[KEY_VALUES] = {cluster, username, ip, agent, verb, path, code, resource, subresource,
                                          namespace, name};
    *hash = combine(values, KEY_VALUES);
    Py_DECREF(path);
    *stamp = time;
    return *hash == -1 ? FAILED : fact ? COUNTED_WITH_FACTS : COUNTED;
}

/* -- the counter table --------------------------------------------------------------------------------------
 *
 * A Counter keeps, for each counter list it has seen, a record of what the events change (the count of the
 * hour being counted, the first and last time) inline in one array, and writes it back to the list when
 * Python is to read it (sync(), and before the recorder's _change_hour runs on it). Updating the lists
 * themselves cost an event a new int and, for the last time, dropping the string of an earlier event,
 * long out of the processor's cache: half of this module's time on simulated traffic. */

#define TIME_CAPACITY 40 /* longer times go to Python */
#define INITIAL_CAPACITY 1024

typedef struct {
    Py_hash_t hash;
    PyObject *counter; /* the Python list (a strong reference); NULL for a free slot */
    Py_ssize_t count;  /* the count of the hour being counted */
    char dirty, first_changed, last_changed, hour_changed;
    unsigned char first_length, last_length;
    char hour[HOUR_LENGTH];
    char first[TIME_CAPACITY], last[TIME_CAPACITY];
} record;

typedef struct {
    PyObject_HEAD
    PyObject *calls, *fallback, *change_hour, *facts;
    record *records;
    Py_ssize_t capacity, used;
    Py_ssize_t cells; /* (counter, hour) cells started here since clear(): roll-up rows the flush writes */
} Counter;

static int
fits(PyObject *text, Py_ssize_t most)
{
    return is_ascii(text) && PyUnicode_GET_LENGTH(text) <= most;
}

/* Fills ``slot`` from the counter list; 0 when the list is not one a record can hold (Python counts those). */
static int
load(record *slot, Py_hash_t hash, PyObject *counter)
{
    if (!PyList_CheckExact(counter) || PyList_GET_SIZE(counter) != COUNTER_FIELDS) {
        return 0;
    }
    PyObject *hours = PyList_GET_ITEM(counter, 1), *first = PyList_GET_ITEM(counter, 2),
             *last = PyList_GET_ITEM(counter, 3), *hour = PyList_GET_ITEM(counter, 4),
             *count = PyList_GET_ITEM(counter, 6);
    if (!PyDict_CheckExact(hours) || !fits(first, TIME_CAPACITY) || !fits(last, TIME_CAPACITY) || !is_ascii(hour) ||
        PyUnicode_GET_LENGTH(hour) != HOUR_LENGTH || !PyLong_CheckExact(count)) {
        return 0;
    }
    Py_ssize_t events = PyLong_AsSsize_t(count);
    if (events == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    slot->hash = hash;
    slot->counter = Py_NewRef(counter);
    slot->count = events;
    slot->dirty = slot->first_changed = slot->last_changed = slot->hour_changed = 0;
    slot->first_length = (unsigned char)PyUnicode_GET_LENGTH(first);
    slot->last_length = (unsigned char)PyUnicode_GET_LENGTH(last);
    memcpy(slot->hour, PyUnicode_DATA(hour), HOUR_LENGTH);
    memcpy(slot->first, PyUnicode_DATA(first), slot->first_length);
    memcpy(slot->last, PyUnicode_DATA(last), slot->last_length);
    return 1;
}

/* Writes the record's count and times back to its list; -1 with an error when memory ran out. */
static int
store(record *slot)
{
    if (!slot->dirty) {
        return 0;
    }
    PyObject *count = PyLong_FromSsize_t(slot->count);
    if (count == NULL) {
        return -1;
    }
    PyList_SetItem(slot->counter, 6, count);
    if (slot->hour_changed) {
        PyObject *hour = PyUnicode_FromStringAndSize(slot->hour, HOUR_LENGTH);
        PyObject *bound = hour == NULL ? NULL : PyUnicode_Concat(hour, s_past_the_hour);
        if (bound == NULL) {
            Py_XDECREF(hour);
            return -1;
        }
        PyList_SetItem(slot->counter, 4, hour);
        PyList_SetItem(slot->counter, 5, bound);
    }
    if (slot->first_changed) {
        PyObject *first = PyUnicode_FromStringAndSize(slot->first, slot->first_length);
        if (first == NULL) {
            return -1;
        }
        PyList_SetItem(slot->counter, 2, first);
    }
    if (slot->last_changed) {
        PyObject *last = PyUnicode_FromStringAndSize(slot->last, slot->last_length);
        if (last == NULL) {
            return -1;
        }
        PyList_SetItem(slot->counter, 3, last);
    }
    slot->dirty = slot->first_changed = slot->last_changed = slot->hour_changed = 0;
    return 0;
}

/* Python's ordering of two ASCII times, one of them a record's. */
static int
time_compare(const char *a, Py_ssize_t la, const char *b, Py_ssize_t lb)
{
    int order = memcmp(a, b, (size_t)(la < lb ? la : lb));
    return order != 0 ? order : (la > lb) - (la < lb);
}

/* The event at ``stamp`` (ASCII, at most TIME_CAPACITY long) widens the record's first or last time. */
static void
widen(record *slot, const char *stamp, Py_ssize_t length)
{
    if (time_compare(stamp, length, slot->last, slot->last_length) > 0) {
        memcpy(slot->last, stamp, (size_t)length);
        slot->last_length = (unsigned char)length;
        slot->last_changed = 1;
    }
    else if (time_compare(stamp, length, slot->first, slot->first_length) < 0) {
        memcpy(slot->first, stamp, (size_t)length);
        slot->first_length = (unsigned char)length;
        slot->first_changed = 1;
    }
    slot->dirty = 1;
}

/* The record for ``hash``, or the free slot where it belongs (linear probing, at most half full). */
static record *
probe(Counter *self, Py_hash_t hash)
{
    size_t mask = (size_t)self->capacity - 1, at = (size_t)hash & mask;
    while (self->records[at].counter != NULL && self->records[at].hash != hash) {
        at = (at + 1) & mask;
    }
    return &self->records[at];
}

static int
grow(Counter *self)
{
    Py_ssize_t old_capacity = self->capacity;
    record *old = self->records;
    record *fresh = PyMem_Calloc((size_t)old_capacity * 2, sizeof(record));
    if (fresh == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->records = fresh;
    self->capacity = old_capacity * 2;
    for (Py_ssize_t i = 0; i < old_capacity; i++) {
        if (old[i].counter != NULL) {
            *probe(self, old[i].hash) = old[i];
        }
    }
    PyMem_Free(old);
    return 0;
}

/* Writes every record back; -1 with an error when memory ran out. */
static int
store_all(Counter *self)
{
    for (Py_ssize_t i = 0; i < self->capacity; i++) {
        if (self->records[i].counter != NULL && store(&self->records[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Forgets every record (after writing them back when ``keep`` says the lists live on). */
static int
forget_all(Counter *self, int keep)
{
    int failed = keep ? store_all(self) : 0;
    for (Py_ssize_t i = 0; i < self->capacity; i++) {
        Py_CLEAR(self->records[i].counter);
    }
    self->used = 0;
    return failed;
}

/* What the recorder's _change_hour does, for an event at ``text`` (ASCII, at least an hour long) in another
 * hour than the record's: the hour's count is added to the counter's dict of hours, and the record counts
 * the event's hour from 1; a cell the dict did not hold yet counts in ``cells``. Calling the Python method
 * instead (and writing the record back and reading it again around it) cost a sixth of this module's time
 * on simulated traffic, whose controllers touch each of their objects every hour. -1 with an error set. */
static int
change_hour(Counter *self, record *slot, const char *text)
{
    PyObject *hours = PyList_GET_ITEM(slot->counter, 1);
    PyObject *hour = PyUnicode_FromStringAndSize(slot->hour, HOUR_LENGTH);
    if (hour == NULL) {
        return -1;
    }
    Py_ssize_t total = slot->count;
    PyObject *put_away = PyDict_GetItemWithError(hours, hour); /* borrowed */
    if (put_away != NULL) {
        Py_ssize_t before = PyLong_CheckExact(put_away) ? PyLong_AsSsize_t(put_away) : -1;
        if (before < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "an hour's count is not a non-negative int");
            }
            Py_DECREF(hour);
            return -1;
        }
        total += before;
    }
    else if (PyErr_Occurred()) {
        Py_DECREF(hour);
        return -1;
    }
    PyObject *value = PyLong_FromSsize_t(total);
    int failed = value == NULL || PyDict_SetItem(hours, hour, value) < 0;
    Py_XDECREF(value);
    Py_DECREF(hour);
    if (failed) {
        return -1;
    }
    PyObject *next = PyUnicode_FromStringAndSize(text, HOUR_LENGTH);
    if (next == NULL) {
        return -1;
    }
    int seen = PyDict_Contains(hours, next);
    Py_DECREF(next);
    if (seen < 0) {
        return -1;
    }
    self->cells += !seen;
    memcpy(slot->hour, text, HOUR_LENGTH);
    slot->count = 1;
    slot->hour_changed = slot->dirty = 1;
    return 0;
}

/* Counts one event; FALL_BACK when the Python method must see it, FAILED on an error. */
static int
count(Counter *self, PyObject *event)
{
    PyObject *stamp = NULL;
    Py_hash_t hash = 0;
    int found = hash_of(event, &hash, &stamp);
    if (found != COUNTED && found != COUNTED_WITH_FACTS) {
        if (found == FALL_BACK && forget_all(self, 1) < 0) {
            return FAILED; /* Python may count into any list: write them back, and read them again after */
        }
        return found;
    }
    Py_ssize_t length = PyUnicode_GET_LENGTH(stamp);
    if (length > TIME_CAPACITY) {
        return forget_all(self, 1) < 0 ? FAILED : FALL_BACK;
    }
    const char *text = (const char *)PyUnicode_DATA(stamp);
    record *slot = probe(self, hash);
    if (slot->counter == NULL) {
        PyObject *key = PyLong_FromSsize_t(hash);
        if (key == NULL) {
            return FAILED;
        }
        PyObject *counter = PyDict_GetItemWithError(self->calls, key); /* borrowed */
        Py_DECREF(key);
        if (counter == NULL) {
            return PyErr_Occurred() ? FAILED : FALL_BACK; /* a new counter: Python makes it */
        }
        if (!load(slot, hash, counter)) {
            return FALL_BACK;
        }
        if (++self->used * 2 > self->capacity) {
            if (grow(self) < 0) {
                return FAILED;
            }
            slot = probe(self, hash);
        }
    }
    if (length >= HOUR_LENGTH && memcmp(text, slot->hour, HOUR_LENGTH) == 0) {
        slot->count++;
        widen(slot, text, length);
        return found;
    }
    if (length >= HOUR_LENGTH) {
        if (change_hour(self, slot, text) < 0) {
            return FAILED;
        }
        widen(slot, text, length);
        return found;
    }
    /* A time too short to name an hour: the recorder puts the hour away in the list as Python slices it,
     * and the record reads the list again. */
    PyObject *counter = Py_NewRef(slot->counter);
    if (store(slot) < 0) {
        Py_DECREF(counter);
        return FAILED;
    }
    PyObject *result = PyObject_CallFunctionObjArgs(self->change_hour, counter, stamp, NULL);
    if (result == NULL) {
        Py_DECREF(counter);
        return FAILED;
    }
    Py_DECREF(result);
    slot = probe(self, hash); /* the same slot: Python code does not touch the table */
    Py_CLEAR(slot->counter);
    int loaded = load(slot, hash, counter);
    Py_DECREF(counter);
    if (!loaded) {
        self->used--; /* a list the record cannot hold; Python counts it from now on */
        return forget_all(self, 1) < 0 ? FAILED : found;
    }
    widen(slot, text, length);
    return found;
}

static PyObject *
Counter_count(Counter *self, PyObject *event)
{
    switch (count(self, event)) {
    case COUNTED:
        Py_RETURN_NONE;
    case COUNTED_WITH_FACTS:
        return PyObject_CallOneArg(self->facts, event);
    case FALL_BACK:
        return PyObject_CallOneArg(self->fallback, event);
    default:
        return NULL;
    }
}

static PyObject *
Counter_sync(Counter *self, PyObject *Py_UNUSED(ignored))
{
    if (store_all(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Counter_clear(Counter *self, PyObject *Py_UNUSED(ignored))
{
    forget_all(self, 0);
    self->cells = 0;
    Py_RETURN_NONE;
}

static int
Counter_init(Counter *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"calls", "fallback", "change_hour", "facts", NULL};
    PyObject *calls, *fallback, *change_hour, *facts;
    if (event_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Counter before configure()");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!OOO:Counter", names, &PyDict_Type, &calls, &fallback,
                                     &change_hour, &facts)) {
        return -1;
    }
    if (self->records != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Counter is initialised once");
        return -1;
    }
    self->records = PyMem_Calloc(INITIAL_CAPACITY, sizeof(record));
    if (self->records == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->capacity = INITIAL_CAPACITY;
    self->calls = Py_NewRef(calls);
    self->fallback = Py_NewRef(fallback);
    self->change_hour = Py_NewRef(change_hour);
    self->facts = Py_NewRef(facts);
    return 0;
}

static int
Counter_traverse(Counter *self, visitproc visit, void *arg)
{
    Py_VISIT(self->calls);
    Py_VISIT(self->fallback);
    Py_VISIT(self->change_hour);
    Py_VISIT(self->facts);
    for (Py_ssize_t i = 0; i < self->capacity; i++) {
        Py_VISIT(self->records[i].counter);
    }
    return 0;
}

static int
Counter_clear_references(Counter *self)
{
    Py_CLEAR(self->calls);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->change_hour);
    Py_CLEAR(self->facts);
    if (self->records != NULL) {
        forget_all(self, 0);
    }
    return 0;
}

static void
Counter_dealloc(Counter *self)
{
    PyObject_GC_UnTrack(self);
    Counter_clear_references(self);
    PyMem_Free(self->records);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Counter_methods[] = {
    {"count", (PyCFunction)Counter_count, METH_O, "count(event): count one counted audit event."},
    {"sync", (PyCFunction)Counter_sync, METH_NOARGS, "Write the counts and times back to the counter lists."},
    {"clear", (PyCFunction)Counter_clear, METH_NOARGS, "Forget every counter (the recorder cleared its dict)."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Counter_members[] = {
    {"cells", T_PYSSIZET, offsetof(Counter, cells), READONLY,
     "Roll-up cells (counter, hour) started by events counted here since clear()."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CounterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kubeguard.graph._counting.Counter",
    .tp_doc = "Counter(calls, fallback, change_hour, facts): one recorder's compiled counting.",
    .tp_basicsize = sizeof(Counter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Counter_init,
    .tp_dealloc = (destructor)Counter_dealloc,
    .tp_traverse = (traverseproc)Counter_traverse,
    .tp_clear = (inquiry)Counter_clear_references,
    .tp_methods = Counter_methods,
    .tp_members = Counter_members,
};

static PyObject *
key_hash(PyObject *module, PyObject *dims)
{
    (void)module;
    if (!PyTuple_CheckExact(dims)) {
        PyErr_SetString(PyExc_TypeError, "key_hash() takes a tuple");
        return NULL;
    }
    Py_hash_t hash = combine(&PyTuple_GET_ITEM(dims, 0), PyTuple_GET_SIZE(dims));
    return hash == -1 ? NULL : PyLong_FromSsize_t(hash);
}

static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "configure(event_type, ref_type, user_type, status_type, "
                                         "connect_subresources, write_verbs, fact_resources)");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < 7; i++) {
        if (i < 4 ? !PyType_Check(args[i]) : !PyFrozenSet_CheckExact(args[i])) {
            PyErr_SetString(PyExc_TypeError, "configure() takes four types and three frozensets");
            return NULL;
        }
    }
    if (resolve((PyTypeObject *)args[0], event_fields, EVENT_FIELDS) ||
        resolve((PyTypeObject *)args[1], ref_fields, REF_FIELDS) ||
        resolve((PyTypeObject *)args[2], user_fields, USER_FIELDS) ||
        resolve((PyTypeObject *)args[3], status_fields, STATUS_FIELDS)) {
        return NULL;
    }
    Py_XSETREF(ref_type, (PyTypeObject *)Py_NewRef(args[1]));
    Py_XSETREF(user_type, (PyTypeObject *)Py_NewRef(args[2]));
    Py_XSETREF(status_type, (PyTypeObject *)Py_NewRef(args[3]));
    Py_XSETREF(connect_subresources, Py_NewRef(args[4]));
    Py_XSETREF(write_verbs, Py_NewRef(args[5]));
    Py_XSETREF(fact_resources, Py_NewRef(args[6]));
    Py_XSETREF(event_type, (PyTypeObject *)Py_NewRef(args[0])); /* last: count_event checks it */
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"key_hash", key_hash, METH_O, "key_hash(dims): the hash count_event keys a counter by, for a key tuple."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "configure(event_type, ref_type, user_type, status_type, connect_subresources, write_verbs, fact_resources)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "kubeguard.graph._counting",
    "The activity recorder's per-event counting, compiled (see kubeguard.graph.recorder).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__counting(void)
{
    /* U+FFFF: the recorder's _PAST_THE_HOUR, which an hour's text is followed by to bound its times. */
    if ((s_empty = PyUnicode_InternFromString("")) == NULL || (s_zero = PyLong_FromLong(0)) == NULL ||
        (s_past_the_hour = PyUnicode_FromOrdinal(0xFFFF)) == NULL) {
        return NULL;
    }
    if (PyType_Ready(&CounterType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL || PyModule_AddObjectRef(module, "Counter", (PyObject *)&CounterType) < 0) {
        Py_XDECREF(module);
        return NULL;
    }
    return module;
}
