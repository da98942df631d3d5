/* A small key-value store in C that speaks crashsweep's native line protocol (docs/native.md).
 *
 *   cc -O2 -o kv examples/native/kv.c
 *   crashsweep sweep --engine 'exec:./kv {dir}'
 *   crashsweep sweep --engine 'exec:./kv {dir} --bug=no-fsync'      (sync() returns without fsync)
 *   crashsweep sweep --engine 'exec:./kv {dir} --bug=no-checksum'   (recovery trusts a torn record)
 *
 * Layout: one append-only file `data.log` of records
 *   [u32 magic][u32 key length][u32 value length, 0xffffffff = delete][key][value][u32 checksum]
 * sync() is fsync(data.log); the file is created, then its directory fsynced, at open.
 * Recovery reads records until the first incomplete or corrupt one and truncates the file there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC 0x6b763031u
#define DELETED 0xffffffffu
#define LINE_MAX_BYTES (64u << 20)

struct entry { unsigned char *key, *value; uint32_t key_length, value_length; };
static struct entry *entries;
static size_t entry_count, entry_capacity;
static int log_fd = -1;
static const char *directory;
static int bug_no_fsync, bug_no_checksum;

static uint32_t checksum(const unsigned char *data, size_t length, uint32_t sum) {
    for (size_t i = 0; i < length; i++) sum = (sum ^ data[i]) * 16777619u;   /* FNV-1a */
    return sum;
}

static struct entry *find(const unsigned char *key, uint32_t length) {
    for (size_t i = 0; i < entry_count; i++)
        if (entries[i].key_length == length && memcmp(entries[i].key, key, length) == 0) return &entries[i];
    return NULL;
}

static void apply(const unsigned char *key, uint32_t key_length, const unsigned char *value, uint32_t value_length) {
    struct entry *found = find(key, key_length);
    if (value_length == DELETED) {
        if (found) { free(found->key); free(found->value); *found = entries[--entry_count]; }
        return;
    }
    if (!found) {
        if (entry_count == entry_capacity) {
            entry_capacity = entry_capacity ? 2 * entry_capacity : 16;
            entries = realloc(entries, entry_capacity * sizeof *entries);
        }
        found = &entries[entry_count++];
        found->key = malloc(key_length + 1);
        memcpy(found->key, key, key_length);
        found->key_length = key_length;
    } else {
        free(found->value);
    }
    found->value = malloc(value_length + 1);
    memcpy(found->value, value, value_length);
    found->value_length = value_length;
}

static int write_all(int fd, const unsigned char *data, size_t length) {
    while (length) {
        ssize_t written = write(fd, data, length);
        if (written < 0) { if (errno == EINTR) continue; return -1; }
        data += written; length -= (size_t)written;
    }
    return 0;
}

static int append(const unsigned char *key, uint32_t key_length, const unsigned char *value, uint32_t value_length) {
    uint32_t stored = value_length == DELETED ? 0 : value_length;
    size_t size = 12 + key_length + stored + 4;
    unsigned char *record = malloc(size);
    uint32_t header[3] = {MAGIC, key_length, value_length};
    memcpy(record, header, 12);
    memcpy(record + 12, key, key_length);
    if (stored) memcpy(record + 12 + key_length, value, stored);
    uint32_t sum = checksum(record, size - 4, 2166136261u);
    memcpy(record + size - 4, &sum, 4);
    int result = write_all(log_fd, record, size);
    free(record);
    return result;
}

static int recover(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/data.log", directory);
    int existed = access(path, F_OK) == 0;
    log_fd = open(path, O_RDWR | O_CREAT | O_APPEND, 0644);
    if (log_fd < 0) return -1;
    if (!existed) {                       /* a new file: make its name durable */
        int dir_fd = open(directory, O_RDONLY | O_DIRECTORY);
        if (dir_fd < 0 || fsync(dir_fd) != 0) return -1;
        close(dir_fd);
    }
    off_t size = lseek(log_fd, 0, SEEK_END);
    unsigned char *data = malloc(size > 0 ? (size_t)size : 1);
    if (pread(log_fd, data, (size_t)size, 0) != size) { free(data); return -1; }
    off_t at = 0;
    while (at + 16 <= size) {
        uint32_t header[3];
        memcpy(header, data + at, 12);
        uint32_t stored = header[2] == DELETED ? 0 : header[2];
        if (header[0] != MAGIC || header[1] > size || stored > size) break;
        off_t end = at + 12 + header[1] + stored + 4;
        if (end > size) break;
        uint32_t sum;
        memcpy(&sum, data + end - 4, 4);
        if (!bug_no_checksum && sum != checksum(data + at, (size_t)(end - at - 4), 2166136261u)) break;
        apply(data + at + 12, header[1], data + at + 12 + header[1], header[2]);
        at = end;
    }
    free(data);
    if (at < size && ftruncate(log_fd, at) != 0) return -1;   /* drop a torn tail */
    return 0;
}

static int unhex(const char *text, unsigned char **out, uint32_t *length) {
    if (strcmp(text, "-") == 0) { *out = malloc(1); *length = 0; return 0; }
    size_t n = strlen(text);
    if (n % 2) return -1;
    *out = malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int byte;
        if (sscanf(text + 2 * i, "%2x", &byte) != 1) return -1;
        (*out)[i] = (unsigned char)byte;
    }
    *length = (uint32_t)(n / 2);
    return 0;
}

static void print_hex(const unsigned char *data, uint32_t length) {
    if (!length) { fputc('-', stdout); return; }
    for (uint32_t i = 0; i < length; i++) printf("%02x", data[i]);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: kv DIRECTORY [--bug=no-fsync|no-checksum]\n"); return 2; }
    directory = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--bug=no-fsync") == 0) bug_no_fsync = 1;
        else if (strcmp(argv[i], "--bug=no-checksum") == 0) bug_no_checksum = 1;
    }
    char *line = malloc(LINE_MAX_BYTES);
    while (fgets(line, LINE_MAX_BYTES, stdin)) {
        line[strcspn(line, "\n")] = 0;
        char *command = strtok(line, " "), *first = strtok(NULL, " "), *second = strtok(NULL, " ");
        unsigned char *key = NULL, *value = NULL;
        uint32_t key_length = 0, value_length = 0;
        if (!command) continue;
        if (first && unhex(first, &key, &key_length) != 0) { printf("error bad hex\n"); fflush(stdout); continue; }
        if (second && unhex(second, &value, &value_length) != 0) { printf("error bad hex\n"); fflush(stdout); continue; }
        if (strcmp(command, "open") == 0) {
            if (recover() != 0) printf("error open: %s\n", strerror(errno)); else printf("ok items\n");
        } else if (strcmp(command, "put") == 0 && key && value) {
            if (append(key, key_length, value, value_length) != 0) printf("error write: %s\n", strerror(errno));
            else { apply(key, key_length, value, value_length); printf("ok\n"); }
        } else if (strcmp(command, "delete") == 0 && key) {
            if (append(key, key_length, NULL, DELETED) != 0) printf("error write: %s\n", strerror(errno));
            else { apply(key, key_length, NULL, DELETED); printf("ok\n"); }
        } else if (strcmp(command, "get") == 0 && key) {
            struct entry *found = find(key, key_length);
            if (!found) printf("none\n"); else { printf("value "); print_hex(found->value, found->value_length); printf("\n"); }
        } else if (strcmp(command, "sync") == 0) {
            if (!bug_no_fsync && fsync(log_fd) != 0) printf("error fsync: %s\n", strerror(errno)); else printf("ok\n");
        } else if (strcmp(command, "items") == 0) {
            printf("items");
            for (size_t i = 0; i < entry_count; i++) {
                printf(" "); print_hex(entries[i].key, entries[i].key_length);
                printf(":"); print_hex(entries[i].value, entries[i].value_length);
            }
            printf("\n");
        } else if (strcmp(command, "close") == 0) {
            close(log_fd);
            printf("ok\n");
            fflush(stdout);
            return 0;
        } else {
            printf("error unknown request %s\n", command);
        }
        fflush(stdout);
        free(key); free(value);
    }
    return 0;
}
