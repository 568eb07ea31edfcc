/*
 * A stand-in for NVIDIA's libnvidia-ml.so.1: the entry points Sizewise calls through pynvml, with NVML's own
 * ABI (nvml.h: return codes, struct layouts, the _v2 names pynvml looks up), answering from a text file.
 *
 * No NVIDIA GPU or driver is on the machines the tests run on, so this is how the real pynvml code path is
 * exercised: pynvml loads it by name (LD_LIBRARY_PATH), resolves each function with dlsym and passes its own
 * ctypes structures, exactly as with the real library. A figure the file gives as -1 answers
 * NVML_ERROR_NOT_SUPPORTED, as real drivers do for many calls on laptops; a call this file does not define
 * answers NVML_ERROR_FUNCTION_NOT_FOUND in pynvml, as an older driver would.
 *
 * $NVML_STANDIN_FILE: one device per line, fields separated by '|':
 *   name|total_bytes|free_bytes|graphics_max_mhz|memory_max_mhz|bus_bits|cuda_cores|util_gpu|util_mem|pcie_gen|pcie_width|pid:used_bytes
 * No file, or an empty one: a driver with no GPU (count 0). The file's first line "FAIL_INIT" makes nvmlInit fail
 * with NVML_ERROR_DRIVER_NOT_LOADED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9

#define MAX_DEVICES 8

typedef struct {
    char name[96];
    unsigned long long total, free;
    long long graphics_mhz, memory_mhz, bus_bits, cores, util_gpu, util_mem, pcie_gen, pcie_width;
    unsigned int pid;
    unsigned long long pid_used;
} device_t;

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_v3_t;

static device_t devices[MAX_DEVICES];
static unsigned int count;
static int initialised;

static int load(void) {
    const char *path = getenv("NVML_STANDIN_FILE");
    count = 0;
    if (!path) return NVML_SUCCESS;
    FILE *f = fopen(path, "r");
    if (!f) return NVML_SUCCESS;
    char line[512];
    while (count < MAX_DEVICES && fgets(line, sizeof line, f)) {
        if (strncmp(line, "FAIL_INIT", 9) == 0) { fclose(f); return NVML_ERROR_DRIVER_NOT_LOADED; }
        device_t *d = &devices[count];
        memset(d, 0, sizeof *d);
        char *fields[12] = {0};
        int n = 0;
        for (char *p = strtok(line, "|\n"); p && n < 12; p = strtok(NULL, "|\n")) fields[n++] = p;
        if (n < 11) continue;
        snprintf(d->name, sizeof d->name, "%s", fields[0]);
        d->total = strtoull(fields[1], NULL, 10);
        d->free = strtoull(fields[2], NULL, 10);
        d->graphics_mhz = atoll(fields[3]);
        d->memory_mhz = atoll(fields[4]);
        d->bus_bits = atoll(fields[5]);
        d->cores = atoll(fields[6]);
        d->util_gpu = atoll(fields[7]);
        d->util_mem = atoll(fields[8]);
        d->pcie_gen = atoll(fields[9]);
        d->pcie_width = atoll(fields[10]);
        if (n == 12) sscanf(fields[11], "%u:%llu", &d->pid, &d->pid_used);
        count++;
    }
    fclose(f);
    return NVML_SUCCESS;
}

static device_t *dev(void *handle) {
    device_t *d = (device_t *)handle;
    return (initialised && d >= devices && d < devices + count) ? d : NULL;
}

static int uint_figure(long long value, unsigned int *out) {
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    if (value < 0) return NVML_ERROR_NOT_SUPPORTED;
    *out = (unsigned int)value;
    return NVML_SUCCESS;
}

int nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    int rc = load();
    initialised = rc == NVML_SUCCESS;
    return rc;
}
int nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
int nvmlShutdown(void) { initialised = 0; return NVML_SUCCESS; }

const char *nvmlErrorString(int result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}

int nvmlDeviceGetCount_v2(unsigned int *n) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    *n = count;
    return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **handle) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (index >= count || !handle) return NVML_ERROR_INVALID_ARGUMENT;
    *handle = &devices[index];
    return NVML_SUCCESS;
}

int nvmlDeviceGetName(void *handle, char *name, unsigned int length) {
    device_t *d = dev(handle);
    if (!d || !name) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(d->name) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(name, d->name);
    return NVML_SUCCESS;
}

int nvmlDeviceGetMemoryInfo(void *handle, nvmlMemory_t *memory) {
    device_t *d = dev(handle);
    if (!d || !memory) return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = d->total;
    memory->free = d->free;
    memory->used = d->total - d->free;
    return NVML_SUCCESS;
}

int nvmlDeviceGetMaxClockInfo(void *handle, int type, unsigned int *clock) {
    device_t *d = dev(handle);
    if (!d) return NVML_ERROR_INVALID_ARGUMENT;
    if (type == 0) return uint_figure(d->graphics_mhz, clock); /* NVML_CLOCK_GRAPHICS */
    if (type == 2) return uint_figure(d->memory_mhz, clock);   /* NVML_CLOCK_MEM */
    return NVML_ERROR_NOT_SUPPORTED;
}

int nvmlDeviceGetMemoryBusWidth(void *handle, unsigned int *bits) {
    device_t *d = dev(handle);
    return d ? uint_figure(d->bus_bits, bits) : NVML_ERROR_INVALID_ARGUMENT;
}

int nvmlDeviceGetNumGpuCores(void *handle, unsigned int *cores) {
    device_t *d = dev(handle);
    return d ? uint_figure(d->cores, cores) : NVML_ERROR_INVALID_ARGUMENT;
}

int nvmlDeviceGetUtilizationRates(void *handle, nvmlUtilization_t *util) {
    device_t *d = dev(handle);
    if (!d || !util) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->util_gpu < 0 || d->util_mem < 0) return NVML_ERROR_NOT_SUPPORTED;
    util->gpu = (unsigned int)d->util_gpu;
    util->memory = (unsigned int)d->util_mem;
    return NVML_SUCCESS;
}

int nvmlDeviceGetCurrPcieLinkGeneration(void *handle, unsigned int *gen) {
    device_t *d = dev(handle);
    return d ? uint_figure(d->pcie_gen, gen) : NVML_ERROR_INVALID_ARGUMENT;
}

int nvmlDeviceGetCurrPcieLinkWidth(void *handle, unsigned int *width) {
    device_t *d = dev(handle);
    return d ? uint_figure(d->pcie_width, width) : NVML_ERROR_INVALID_ARGUMENT;
}

int nvmlDeviceGetComputeRunningProcesses_v3(void *handle, unsigned int *n, nvmlProcessInfo_v3_t *infos) {
    device_t *d = dev(handle);
    if (!d || !n) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int have = d->pid ? 1 : 0;
    if (*n < have) { *n = have; return NVML_ERROR_INSUFFICIENT_SIZE; }
    *n = have;
    if (have) {
        infos[0].pid = d->pid;
        infos[0].usedGpuMemory = d->pid_used;
        infos[0].gpuInstanceId = 0xFFFFFFFF;
        infos[0].computeInstanceId = 0xFFFFFFFF;
    }
    return NVML_SUCCESS;
}
