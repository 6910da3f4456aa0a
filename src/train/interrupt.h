// SIGINT / SIGTERM while training. The handler only records the signal (async-signal-safe); the
// training loop polls it between steps, finishes the step, writes a checkpoint and exits with
// 128 + signal. The handler is one-shot (SA_RESETHAND): a second Ctrl-C kills the process at once,
// which the durable checkpoints survive (the previous one stays valid).
#pragma once

namespace mest::train {

class InterruptHandler {
public:
    InterruptHandler();   // installs the handler for SIGINT and SIGTERM, clearing any pending signal
    ~InterruptHandler();  // restores the previous dispositions
    InterruptHandler(const InterruptHandler &) = delete;
    InterruptHandler & operator=(const InterruptHandler &) = delete;

    // The signal received since installation, 0 when none.
    static int pending();
};

}  // namespace mest::train
