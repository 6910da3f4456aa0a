// MemoryLedger accounting through Buffer, Tensor and the shared workspace. The ledger is a
// process-wide singleton that other tests also allocate from, so every check measures a delta
// against a snapshot taken just before, never an absolute value.
#include "core/ledger.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

#include "core/buffer.h"
#include "core/tensor.h"
#include "core/workspace.h"

namespace mest {
namespace {

MemoryLedger & ledger() {
    return MemoryLedger::instance();
}

// Current and peak bytes of one category, captured at a point in time.
struct Level {
    std::size_t current, peak;
};
Level level(MemCategory category) {
    return {ledger().current(category), ledger().peak(category)};
}

TEST(Ledger, CategoryNames) {
    EXPECT_STREQ(mem_category_name(MemCategory::kParameters), "parameters");
    EXPECT_STREQ(mem_category_name(MemCategory::kGradients), "gradients");
    EXPECT_STREQ(mem_category_name(MemCategory::kOptimizerState), "optimizer_state");
    EXPECT_STREQ(mem_category_name(MemCategory::kActivations), "activations");
    EXPECT_STREQ(mem_category_name(MemCategory::kWorkspace), "workspace");
    EXPECT_STREQ(mem_category_name(MemCategory::kSparseIndices), "sparse_indices");
    EXPECT_STREQ(mem_category_name(MemCategory::kData), "data");
}

TEST(Ledger, BufferAllocAndFreeMoveCurrentOfItsCategoryByExactlyBytes) {
    for (int c = 0; c < kMemCategoryCount; ++c) {
        const auto category = static_cast<MemCategory>(c);
        SCOPED_TRACE(mem_category_name(category));
        const LedgerSnapshot before = ledger().snapshot();
        {
            Buffer<float> buffer(1000, category);
            EXPECT_EQ(buffer.bytes(), 4000u);
            EXPECT_EQ(buffer.size(), 1000u);
            EXPECT_EQ(buffer.category(), category);
            const LedgerSnapshot during = ledger().snapshot();
            for (int other = 0; other < kMemCategoryCount; ++other) {
                const std::size_t expected = before.current[other] + (other == c ? buffer.bytes() : 0);
                EXPECT_EQ(during.current[other], expected) << mem_category_name(static_cast<MemCategory>(other));
            }
            EXPECT_EQ(during.total_current, before.total_current + buffer.bytes());
        }
        const LedgerSnapshot after = ledger().snapshot();
        for (int other = 0; other < kMemCategoryCount; ++other) EXPECT_EQ(after.current[other], before.current[other]);
        EXPECT_EQ(after.total_current, before.total_current);
    }
}

TEST(Ledger, BytesUseTheElementSize) {
    const Level before = level(MemCategory::kGradients);
    {
        Buffer<double> d(10, MemCategory::kGradients);
        EXPECT_EQ(d.bytes(), 80u);
        Buffer<uint8_t> b(7, MemCategory::kGradients);  // not rounded up to the 64-byte alignment
        EXPECT_EQ(b.bytes(), 7u);
        EXPECT_EQ(level(MemCategory::kGradients).current, before.current + 87);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(d.data()) % 64, 0u);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 64, 0u);
    }
    EXPECT_EQ(level(MemCategory::kGradients).current, before.current);
}

TEST(Ledger, EmptyBufferRecordsNothing) {
    const LedgerSnapshot before = ledger().snapshot();
    {
        Buffer<float> empty(0, MemCategory::kActivations);
        Buffer<float> defaulted;
        EXPECT_EQ(empty.data(), nullptr);
        EXPECT_EQ(defaulted.data(), nullptr);
        EXPECT_EQ(ledger().snapshot().total_current, before.total_current);
    }
    EXPECT_EQ(ledger().snapshot().total_current, before.total_current);
}

TEST(Ledger, ZeroFillRequested) {
    Buffer<int32_t> zeros(257, MemCategory::kData, true);
    for (std::size_t i = 0; i < zeros.size(); ++i) ASSERT_EQ(zeros[i], 0) << i;
    zeros.fill(7);
    for (int32_t v : zeros.span()) ASSERT_EQ(v, 7);
}

TEST(Ledger, PeakRisesByBytesAndSurvivesFrees) {
    ledger().reset_peaks();
    const Level start = level(MemCategory::kActivations);
    EXPECT_EQ(start.peak, start.current);  // a fresh window starts at the current level
    {
        Buffer<float> a(256, MemCategory::kActivations);
        EXPECT_EQ(level(MemCategory::kActivations).peak, start.current + 1024);
        {
            Buffer<float> b(512, MemCategory::kActivations);
            EXPECT_EQ(level(MemCategory::kActivations).peak, start.current + 1024 + 2048);
        }
        // b is gone; the peak remembers it.
        EXPECT_EQ(level(MemCategory::kActivations).current, start.current + 1024);
        EXPECT_EQ(level(MemCategory::kActivations).peak, start.current + 3072);
        // Re-allocating less than the peak does not move it.
        Buffer<float> c(100, MemCategory::kActivations);
        EXPECT_EQ(level(MemCategory::kActivations).peak, start.current + 3072);
    }
    EXPECT_EQ(level(MemCategory::kActivations).current, start.current);
    EXPECT_EQ(level(MemCategory::kActivations).peak, start.current + 3072);
}

TEST(Ledger, ResetPeaksStartsANewWindowAtTheCurrentLevel) {
    Buffer<float> held(64, MemCategory::kSparseIndices);
    { Buffer<float> transient(4096, MemCategory::kSparseIndices); }
    const Level high = level(MemCategory::kSparseIndices);
    EXPECT_GE(high.peak, high.current + 4096 * sizeof(float));

    ledger().reset_peaks();
    const LedgerSnapshot reset = ledger().snapshot();
    for (int c = 0; c < kMemCategoryCount; ++c) EXPECT_EQ(reset.peak[c], reset.current[c]) << c;
    EXPECT_EQ(reset.total_peak, reset.total_current);
    EXPECT_EQ(level(MemCategory::kSparseIndices).peak, high.current);  // `held` is still counted

    { Buffer<float> smaller(16, MemCategory::kSparseIndices); }
    EXPECT_EQ(level(MemCategory::kSparseIndices).peak, high.current + 64);
}

TEST(Ledger, SnapshotAgreesWithAccessors) {
    Buffer<float> a(33, MemCategory::kOptimizerState);
    const LedgerSnapshot s = ledger().snapshot();
    std::size_t sum = 0;
    for (int c = 0; c < kMemCategoryCount; ++c) {
        const auto category = static_cast<MemCategory>(c);
        EXPECT_EQ(s.current[c], ledger().current(category));
        EXPECT_EQ(s.peak[c], ledger().peak(category));
        EXPECT_GE(s.peak[c], s.current[c]);
        sum += s.current[c];
    }
    EXPECT_EQ(s.total_current, sum);
    EXPECT_EQ(s.total_peak, ledger().total_peak());
    EXPECT_GE(s.total_peak, s.total_current);
}

TEST(Ledger, MovingABufferDoesNotDoubleCount) {
    const Level before = level(MemCategory::kGradients);
    ledger().reset_peaks();
    {
        Buffer<float> a(100, MemCategory::kGradients);
        float * data = a.data();
        Buffer<float> b(std::move(a));
        EXPECT_EQ(level(MemCategory::kGradients).current, before.current + 400);
        EXPECT_EQ(b.data(), data);
        EXPECT_EQ(b.size(), 100u);
        EXPECT_EQ(b.category(), MemCategory::kGradients);
        EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
        EXPECT_EQ(a.size(), 0u);

        Buffer<float> c;
        c = std::move(b);
        EXPECT_EQ(level(MemCategory::kGradients).current, before.current + 400);
        EXPECT_EQ(c.data(), data);

        // Move-assigning over a live buffer frees the old contents exactly once.
        Buffer<float> d(50, MemCategory::kGradients);
        EXPECT_EQ(level(MemCategory::kGradients).current, before.current + 600);
        d = std::move(c);
        EXPECT_EQ(level(MemCategory::kGradients).current, before.current + 400);
        EXPECT_EQ(d.data(), data);
        EXPECT_EQ(d.size(), 100u);

        // Self-move is a no-op.
        Buffer<float> & alias = d;
        d = std::move(alias);
        EXPECT_EQ(d.data(), data);
        EXPECT_EQ(level(MemCategory::kGradients).current, before.current + 400);
        EXPECT_EQ(level(MemCategory::kGradients).peak, before.current + 600);
    }
    EXPECT_EQ(level(MemCategory::kGradients).current, before.current);
}

TEST(Ledger, MovingKeepsTheCategoryOfTheSource) {
    const Level params = level(MemCategory::kParameters);
    const Level data = level(MemCategory::kData);
    {
        Buffer<float> target(10, MemCategory::kData);
        target = Buffer<float>(20, MemCategory::kParameters);
        EXPECT_EQ(target.category(), MemCategory::kParameters);
        EXPECT_EQ(level(MemCategory::kData).current, data.current);
        EXPECT_EQ(level(MemCategory::kParameters).current, params.current + 80);
    }
    // Freed under the category it was recorded in: both return to where they were.
    EXPECT_EQ(level(MemCategory::kData).current, data.current);
    EXPECT_EQ(level(MemCategory::kParameters).current, params.current);
}

TEST(Ledger, TensorCopiesShareStorageAndCloneAddsBytes) {
    const Level before = level(MemCategory::kActivations);
    {
        Tensor<float> t(Shape{2, 3, 4, 5}, MemCategory::kActivations);
        const std::size_t bytes = 2 * 3 * 4 * 5 * sizeof(float);
        EXPECT_EQ(level(MemCategory::kActivations).current, before.current + bytes);
        for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i);

        Tensor<float> copy = t;
        Tensor<float> assigned;
        assigned = t;
        const Tensor<float> flat = t.reshaped(Shape{2, 60});
        EXPECT_EQ(level(MemCategory::kActivations).current, before.current + bytes);
        EXPECT_EQ(copy.data(), t.data());
        EXPECT_EQ(assigned.data(), t.data());
        EXPECT_EQ(flat.data(), t.data());
        EXPECT_EQ(flat.shape(), (Shape{2, 60}));

        const Tensor<float> cloned = t.clone(MemCategory::kActivations);
        EXPECT_EQ(level(MemCategory::kActivations).current, before.current + 2 * bytes);
        EXPECT_NE(cloned.data(), t.data());
        EXPECT_EQ(cloned.shape(), t.shape());
        for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(cloned[i], t[i]);

        // The clone is counted in the category asked for.
        const Level ws = level(MemCategory::kWorkspace);
        {
            const Tensor<float> other = t.clone(MemCategory::kWorkspace);
            EXPECT_EQ(level(MemCategory::kWorkspace).current, ws.current + bytes);
        }
        EXPECT_EQ(level(MemCategory::kWorkspace).current, ws.current);

        // Dropping the original keeps the storage alive while a copy holds it.
        t = Tensor<float>();
        EXPECT_TRUE(t.empty());
        EXPECT_EQ(level(MemCategory::kActivations).current, before.current + 2 * bytes);
        copy = Tensor<float>();
        assigned = Tensor<float>();
        EXPECT_EQ(level(MemCategory::kActivations).current, before.current + 2 * bytes);  // `flat` still holds it
    }
    EXPECT_EQ(level(MemCategory::kActivations).current, before.current);
}

TEST(Ledger, TensorZerosIsZeroFilled) {
    const Tensor<double> z = Tensor<double>::zeros(Shape{3, 7}, MemCategory::kActivations);
    for (double v : z.span()) ASSERT_EQ(v, 0.0);
}

TEST(Ledger, WorkspaceSlotsGrowAndAreCountedAsWorkspace) {
    workspace_release_all();
    const Level start = level(MemCategory::kWorkspace);

    void * a = workspace_get(WorkspaceSlot::kStagingA, 1000);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 64, 0u);
    EXPECT_EQ(level(MemCategory::kWorkspace).current, start.current + 1000);

    // A smaller request reuses the slot: same pointer, no new bytes.
    EXPECT_EQ(workspace_get(WorkspaceSlot::kStagingA, 10), a);
    EXPECT_EQ(workspace_get(WorkspaceSlot::kStagingA, 1000), a);
    EXPECT_EQ(level(MemCategory::kWorkspace).current, start.current + 1000);

    // A larger request grows the slot to exactly the new size (the old block is freed first).
    ledger().reset_peaks();
    void * grown = workspace_get(WorkspaceSlot::kStagingA, 5000);
    ASSERT_NE(grown, nullptr);
    EXPECT_EQ(level(MemCategory::kWorkspace).current, start.current + 5000);
    EXPECT_EQ(level(MemCategory::kWorkspace).peak, start.current + 5000);

    // Slots are independent and add up.
    workspace_get(WorkspaceSlot::kScratchpad, 300);
    EXPECT_EQ(level(MemCategory::kWorkspace).current, start.current + 5300);

    workspace_release_all();
    EXPECT_EQ(level(MemCategory::kWorkspace).current, start.current);
}

TEST(Ledger, TotalPeakIsThePeakOfTheSumNotTheSumOfPeaks) {
    ledger().reset_peaks();
    const LedgerSnapshot start = ledger().snapshot();
    { Buffer<uint8_t> a(10000, MemCategory::kParameters); }
    { Buffer<uint8_t> b(10000, MemCategory::kGradients); }
    const LedgerSnapshot after = ledger().snapshot();
    EXPECT_EQ(after.peak[static_cast<int>(MemCategory::kParameters)],
              start.current[static_cast<int>(MemCategory::kParameters)] + 10000);
    EXPECT_EQ(after.peak[static_cast<int>(MemCategory::kGradients)],
              start.current[static_cast<int>(MemCategory::kGradients)] + 10000);
    EXPECT_EQ(after.total_peak, start.total_current + 10000);  // never both alive at once

    {
        Buffer<uint8_t> a(10000, MemCategory::kParameters);
        Buffer<uint8_t> b(10000, MemCategory::kGradients);
        EXPECT_EQ(ledger().total_peak(), start.total_current + 20000);
    }
    EXPECT_EQ(ledger().total_peak(), start.total_current + 20000);
    EXPECT_EQ(ledger().snapshot().total_current, start.total_current);
}

TEST(Ledger, FreeingMoreThanRecordedIsAnInternalError) {
    const std::size_t current = ledger().current(MemCategory::kSparseIndices);
    try {
        ledger().record_free(MemCategory::kSparseIndices, current + 1);
        ADD_FAILURE() << "expected an internal error";
    } catch (const Error & e) {
        EXPECT_EQ(e.kind(), ErrorKind::kInternal);
        EXPECT_NE(std::string(e.what()).find("ledger underflow in sparse_indices"), std::string::npos) << e.what();
    }
    EXPECT_EQ(ledger().current(MemCategory::kSparseIndices), current);
}

TEST(Ledger, ProcessRssIsReadFromProc) {
    const std::size_t current = process_current_rss_bytes();
    EXPECT_GT(current, 0u);
    EXPECT_GE(process_peak_rss_bytes(), current);  // the high-water mark, read after
}

TEST(Ledger, FormatBytes) {
    EXPECT_EQ(format_bytes(0), "0.0 KB");
    EXPECT_EQ(format_bytes(1536), "1.5 KB");
    EXPECT_EQ(format_bytes(1u << 20), "1.0 MB");
    EXPECT_EQ(format_bytes(5u << 20), "5.0 MB");
}

}  // namespace
}  // namespace mest
