// Seeded, platform-independent random numbers (xoshiro256** seeded by splitmix64). std::
// distributions differ between standard libraries, so runs would not reproduce across them.
#pragma once
#include <cmath>
#include <cstdint>

namespace mest {

class Rng {
public:
    explicit Rng(uint64_t seed = 914) { reseed(seed); }
    void reseed(uint64_t seed) {
        uint64_t x = seed;
        for (auto & s : state_) s = splitmix(x);
        has_spare_ = false;
    }
    uint64_t next_u64() {
        const uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }
    // Uniform in [0, 1).
    double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    // Uniform integer in [0, n), unbiased (Lemire's method with rejection).
    uint64_t below(uint64_t n) {
        if (n <= 1) return 0;
        const uint64_t threshold = (0 - n) % n;
        for (;;) {
            const uint64_t r = next_u64();
            if (r >= threshold) return r % n;
        }
    }
    double normal() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u, v, s;
        do {
            u = uniform(-1.0, 1.0);
            v = uniform(-1.0, 1.0);
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        const double m = std::sqrt(-2.0 * std::log(s) / s);
        spare_ = v * m;
        has_spare_ = true;
        return u * m;
    }
    // A child stream for an independent consumer (e.g. one per layer), stable given the parent seed.
    Rng split() { return Rng(next_u64()); }

    struct State {
        uint64_t s[4];
    };
    State state() const { return {{state_[0], state_[1], state_[2], state_[3]}}; }
    void set_state(const State & st) {
        for (int i = 0; i < 4; ++i) state_[i] = st.s[i];
        has_spare_ = false;
    }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static uint64_t splitmix(uint64_t & x) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    uint64_t state_[4];
    double spare_ = 0.0;
    bool has_spare_ = false;
};

}  // namespace mest
