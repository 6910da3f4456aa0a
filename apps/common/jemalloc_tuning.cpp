// jemalloc reads its options from this symbol when the process starts (MALLOC_CONF in the
// environment still overrides them).
//
// A training step frees and re-allocates the same activation tensors, tens of MB, every step.
// jemalloc's default decay hands freed pages back to the kernel within seconds, and at once for
// allocations of 8 MB and more, so every ResNet-32 step at batch 64 paid ~15,000 page faults to
// get them back: ~14 ms of a 74 ms block-90% step (2-core Xeon, 2026-12-02). Never purging costs no
// peak memory, since the next step reuses the same pages. A phase with other sizes (evaluation)
// hands them back first: return_freed_memory() in core/buffer.h.
extern "C" {
extern const char * malloc_conf;
const char * malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}
