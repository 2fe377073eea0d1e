// A Verilator main for the matching engine's long regression (tickwire.sim.fast_regress):
// plays a file of Command.to_bytes() records through i_cmd with random idle cycles, takes
// o_event under random backpressure, checks that an offered event stays offered unchanged until
// taken, and writes every event as a little-endian record. No Python runs per cycle: the
// comparison with the model is made afterwards, on the files.
//
// usage: harness COMMANDS EVENTS SEED IDLE_PERMILLE STALL_PERMILLE LAST_BIT COMMAND_BYTES
//                EVENT_BYTES
// Verilator spells the ports' "__" as "___05F".
// exit: 0 done; 2 bad usage or file; 3 hang (no event for 100,000 cycles); 4 an event changed
// while stalled. Prints "commands N events N cycles N" on success.
#include "Vmatching_engine.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

uint64_t rng_state;

uint64_t next_random() {  // xorshift64*
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

bool chance(unsigned permille) { return permille && next_random() % 1000 < permille; }

template <typename Wide>
void load(Wide& wide, const uint8_t* bytes, size_t count) {
    constexpr size_t words = sizeof(Wide) / sizeof(uint32_t);
    for (size_t w = 0; w < words; ++w) {
        uint32_t value = 0;
        for (size_t b = 0; b < 4; ++b) {
            size_t index = 4 * w + b;
            if (index < count) value |= uint32_t(bytes[index]) << (8 * b);
        }
        wide[w] = value;
    }
}

template <typename Wide>
void store(const Wide& wide, uint8_t* bytes, size_t count) {
    constexpr size_t words = sizeof(Wide) / sizeof(uint32_t);
    std::memset(bytes, 0, count);
    for (size_t w = 0; w < words; ++w)
        for (size_t b = 0; b < 4 && 4 * w + b < count; ++b)
            bytes[4 * w + b] = uint8_t(wide[w] >> (8 * b));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 9) {
        std::fprintf(stderr, "usage: %s COMMANDS EVENTS SEED IDLE STALL LAST_BIT CMD_BYTES "
                     "EVENT_BYTES\n", argv[0]);
        return 2;
    }
    rng_state = std::strtoull(argv[3], nullptr, 10) * 0x9E3779B97F4A7C15ULL + 1;
    const unsigned idle = std::atoi(argv[4]), stall = std::atoi(argv[5]);
    const unsigned last_bit = std::atoi(argv[6]);
    const size_t cmd_bytes = std::atoi(argv[7]), event_bytes = std::atoi(argv[8]);

    std::FILE* in = std::fopen(argv[1], "rb");
    std::FILE* out = std::fopen(argv[2], "wb");
    if (!in || !out) { std::perror("harness: open"); return 2; }
    std::vector<uint8_t> commands;
    uint8_t buffer[1 << 16];
    for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, in)) > 0;)
        commands.insert(commands.end(), buffer, buffer + n);
    std::fclose(in);
    const size_t total = commands.size() / cmd_bytes;

    VerilatedContext context;
    Vmatching_engine top{&context};
    auto step = [&top]() { top.clk = 1; top.eval(); top.clk = 0; top.eval(); };
    top.clk = 0; top.rst = 1; top.i_cmd___05Fvalid = 0; top.o_event___05Fready = 0;
    top.eval();
    for (int i = 0; i < 3; ++i) step();
    top.rst = 0;
    top.eval();

    std::vector<uint8_t> event(event_bytes), held(event_bytes);
    bool holding = false, offering = false;
    size_t sent = 0, done = 0, events = 0;
    uint64_t cycles = 0, quiet = 0;
    while (done < total) {
        // Inputs change with the clock low; the handshakes are judged on settled values.
        if (!offering && sent < total && !chance(idle)) {
            load(top.i_cmd___05Fpayload, &commands[sent * cmd_bytes], cmd_bytes);
            offering = true;
        }
        top.i_cmd___05Fvalid = offering;
        const bool ready = !chance(stall);
        top.o_event___05Fready = ready;
        top.eval();
        const bool taken = offering && top.i_cmd___05Fready;
        const bool valid = top.o_event___05Fvalid;
        if (valid) store(top.o_event___05Fpayload, event.data(), event_bytes);
        if (holding && (!valid || event != held)) {
            std::fprintf(stderr, "harness: o_event changed while stalled (event %zu)\n", events);
            return 4;
        }
        holding = valid && !ready;
        if (holding) held = event;
        if (valid && ready) {
            std::fwrite(event.data(), 1, event_bytes, out);
            ++events;
            quiet = 0;
            if ((event[last_bit / 8] >> (last_bit % 8)) & 1) ++done;
        } else if (++quiet > 100000) {
            std::fprintf(stderr, "harness: hang after %zu of %zu commands\n", done, total);
            return 3;
        }
        if (taken) { offering = false; ++sent; }
        step();
        ++cycles;
    }
    std::fclose(out);
    top.final();
    std::printf("commands %zu events %zu cycles %llu\n", total, events,
                (unsigned long long)cycles);
    return 0;
}
