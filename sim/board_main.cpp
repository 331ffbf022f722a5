// The virtual board's simulator: a plain Verilator loop around the board's gateware
// (board.py), started by wirestamp.sim.virtual. No Python and no VPI run here, so a cycle
// costs only the model's own evaluation.
//
// Arguments: --dut N --capture 0|1 --drop T --dup T --hold T --seed S --octave C --usb 0|1 --unplugged 0|1 --queue N --frame-service Q --byte-service Q --table FILE
// (the echo model's delay table, one number of cycles per line), or --idle CYCLES (run that
// many cycles with nothing to do and print "@T seconds": the speed benchmark).
//
// Standard input carries messages `kind (1 byte) | length (4 bytes, big-endian) | payload`:
//   C  control bytes for the bridge       F  a frame (without FCS) for the injector
// End of input ends the simulation. Standard output carries the board's printed lines
// (Verilog $write) and "@R" once the board is ready. (Verilator spells the port ctl__valid
// as ctl___05Fvalid.)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

static const int RESET_CYCLES = 16;         // board.py
static const uint64_t POLL_CYCLES = 500;    // look at standard input every 4 us simulated

struct Board {
    Vtop* top;
    bool ctl_high = false;      // ctl_clk: half of clk, rising with every other clk edge
    void tick() {
        ctl_high = !ctl_high;
        top->clk = 1;
        top->ctl_clk = ctl_high;
        top->eval();
        top->clk = 0;
        top->eval();
    }
};

static uint64_t arg(int argc, char** argv, const char* name, uint64_t fallback) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return strtoull(argv[i + 1], nullptr, 0);
    return fallback;
}

static const char* arg_text(int argc, char** argv, const char* name) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return nullptr;
}

int main(int argc, char** argv) {
    static char out_buffer[1 << 20];
    setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);
    VerilatedContext context;
    Board board{new Vtop{&context}};
    Vtop* top = board.top;

    top->dut = arg(argc, argv, "--dut", 0);
    top->capture = arg(argc, argv, "--capture", 0);
    top->usb_records = arg(argc, argv, "--usb", 0);
    top->unplugged = arg(argc, argv, "--unplugged", 0);
    top->drop_below = arg(argc, argv, "--drop", 0);
    top->duplicate_below = arg(argc, argv, "--dup", 0);
    top->hold_below = arg(argc, argv, "--hold", 0);
    top->seed = arg(argc, argv, "--seed", 1);
    top->octave = arg(argc, argv, "--octave", 0);
    top->queue_frames = arg(argc, argv, "--queue", 0);
    top->frame_service = arg(argc, argv, "--frame-service", 0);
    top->byte_service = arg(argc, argv, "--byte-service", 0);
    for (int i = 0; i < RESET_CYCLES + 2; i++) board.tick();   // inputs are registered after reset

    if (const char* path = arg_text(argc, argv, "--table")) {
        FILE* table = fopen(path, "r");
        unsigned long cycles;
        top->table_en = 1;
        for (int addr = 0; table && fscanf(table, "%lu", &cycles) == 1; addr++) {
            top->table_addr = addr;
            top->table_data = cycles;
            board.tick();
        }
        top->table_en = 0;
        if (table) fclose(table);
    }

    if (uint64_t idle = arg(argc, argv, "--idle", 0)) {
        auto began = std::chrono::steady_clock::now();
        for (uint64_t i = 0; i < idle; i++) board.tick();
        std::chrono::duration<double> spent = std::chrono::steady_clock::now() - began;
        printf("@T %.6f\n", spent.count());
        return 0;
    }

    printf("@R\n");
    fflush(stdout);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    std::vector<uint8_t> input;
    std::deque<uint8_t> control;
    std::deque<uint16_t> inject;    // byte | last << 8
    bool open = true;
    for (uint64_t cycle = 0; open; cycle++) {
        if (cycle % POLL_CYCLES == 0) {
            fflush(stdout);
            uint8_t chunk[65536];
            ssize_t got = read(0, chunk, sizeof chunk);
            if (got == 0) open = false;
            if (got > 0) input.insert(input.end(), chunk, chunk + got);
            size_t at = 0;
            while (input.size() - at >= 5) {
                uint32_t length = input[at + 1] << 24 | input[at + 2] << 16
                                | input[at + 3] << 8 | input[at + 4];
                if (input.size() - at < 5 + length) break;
                const uint8_t* payload = &input[at + 5];
                if (input[at] == 'C') control.insert(control.end(), payload, payload + length);
                if (input[at] == 'F')
                    for (uint32_t i = 0; i < length; i++)
                        inject.push_back(payload[i] | (i + 1 == length ? 0x100 : 0));
                at += 5 + length;
            }
            input.erase(input.begin(), input.begin() + at);
        }
        top->ctl___05Fvalid = !control.empty();
        if (!control.empty()) {
            top->ctl___05Fpayload = control.front();
            control.pop_front();
        }
        top->inject___05Fvalid = !inject.empty();
        if (!inject.empty()) {
            top->inject___05Fpayload = inject.front();
            inject.pop_front();
        }
        board.tick();
    }
    fflush(stdout);
    top->final();
    delete top;
    return 0;
}
