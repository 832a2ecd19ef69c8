// Virtual board: a Verilated top level (ports clk, rst, rx, tx, busy) behind a pseudo-terminal.
//
// The model is clocked free-running in C++ (no Python per clock edge). Bytes that the host
// writes to the pty are shifted onto `rx` as 8N1 frames of `divisor` cycles per bit; `tx` is
// decoded (sampled at mid-bit) into bytes written back to the host. A serial library opens
// the pty's slave path exactly like a USB serial adapter.
//
// Built by sw/virtual.py with `verilator --cc --exe --build --prefix Vboard`; run
// `virtual_board --help` for the options. Protocol with the parent process:
//   * stdout: the first line is the slave path of the pty (then nothing else from us; the
//     design's $display output, if any, follows);
//   * stdin: end of file means the parent died, and the board exits (unless --ignore-stdin);
//   * stderr: one JSON line of statistics on exit (and on SIGUSR1), error messages.
// Exit status: 0 after SIGTERM/SIGINT/SIGHUP, end of stdin, --max-cycles or $finish; 2 for
// bad arguments; 1 for runtime errors.

#include "Vboard.h"
#include "verilated.h"

#ifndef VM_TRACE
#define VM_TRACE 0
#endif
#ifndef VM_TRACE_FST
#define VM_TRACE_FST 0
#endif

#if VM_TRACE_FST
#include "verilated_fst_c.h"
#elif VM_TRACE
#include "verilated_vcd_c.h"
#endif

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#ifndef VB_DEFAULT_DIVISOR
#define VB_DEFAULT_DIVISOR 0  // 0: --divisor is required
#endif

namespace {

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_report = 0;

void on_stop(int) { g_stop = 1; }
void on_report(int) { g_report = 1; }

[[noreturn]] void die_usage(const char* msg, const char* arg = nullptr) {
    std::fprintf(stderr, "virtual_board: error: %s%s%s (see --help)\n", msg, arg ? ": " : "",
                 arg ? arg : "");
    std::exit(2);
}

[[noreturn]] void die_sys(const char* what) {
    std::fprintf(stderr, "virtual_board: error: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

const char* const USAGE =
    "usage: virtual_board [options]\n"
    "Runs the Verilated top level behind a pseudo-terminal; prints the pty's path first.\n"
    "  --divisor N        clock cycles per UART bit, must match the RTL (>= 2)%s\n"
    "  --waves PATH       write a waveform, %s\n"
    "  --vcd/--fst PATH   the same, checking the format\n"
    "  --reset-cycles N   cycles with rst high at start (default 8)\n"
    "  --poll-every N     cycles between non-blocking looks at the pty (default 256)\n"
    "  --linger N         cycles to keep clocking after the last activity before sleeping\n"
    "                     (default 32 * divisor + 256)\n"
    "  --no-idle          never sleep: clock continuously (benchmarks)\n"
    "  --max-cycles N     exit after N cycles (0: no limit, the default)\n"
    "  --ignore-stdin     do not exit when stdin reaches end of file\n"
    "Stops on SIGTERM, SIGINT, SIGHUP or end of stdin and prints one JSON line of statistics\n"
    "to stderr; SIGUSR1 prints the statistics and continues.\n";

uint64_t parse_u64(const char* opt, const char* s) {
    if (!s) die_usage("missing value for", opt);
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') die_usage("not a non-negative integer", s);
    return v;
}

struct Options {
    uint64_t divisor = VB_DEFAULT_DIVISOR;
    const char* waves = nullptr;
    uint64_t reset_cycles = 8;
    uint64_t poll_every = 256;
    uint64_t linger = 0;
    bool linger_set = false;
    bool no_idle = false;
    uint64_t max_cycles = 0;
    bool ignore_stdin = false;
};

Options parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
        if (a == "--help" || a == "-h") {
            char dflt[64] = "";
            if (VB_DEFAULT_DIVISOR)
                std::snprintf(dflt, sizeof dflt, " (default %d)", VB_DEFAULT_DIVISOR);
            std::printf(USAGE, dflt,
                        VM_TRACE_FST ? "FST" : VM_TRACE ? "VCD" : "not in this build (no waves)");
            std::exit(0);
        } else if (a == "--divisor") {
            o.divisor = parse_u64(argv[i], next), ++i;
        } else if (a == "--waves" || a == "--vcd" || a == "--fst") {
            if (!next) die_usage("missing value for", argv[i]);
            if ((a == "--fst" && !VM_TRACE_FST) || (a == "--vcd" && VM_TRACE_FST))
                die_usage("this binary writes the other waveform format; use --waves", argv[i]);
            o.waves = next, ++i;
        } else if (a == "--reset-cycles") {
            o.reset_cycles = parse_u64(argv[i], next), ++i;
        } else if (a == "--poll-every") {
            o.poll_every = parse_u64(argv[i], next), ++i;
        } else if (a == "--linger") {
            o.linger = parse_u64(argv[i], next), o.linger_set = true, ++i;
        } else if (a == "--no-idle") {
            o.no_idle = true;
        } else if (a == "--max-cycles") {
            o.max_cycles = parse_u64(argv[i], next), ++i;
        } else if (a == "--ignore-stdin") {
            o.ignore_stdin = true;
        } else if (a.rfind("+verilator+", 0) == 0) {
            // Verilator runtime options, handled by the context
        } else {
            die_usage("unknown argument", argv[i]);
        }
    }
    if (o.divisor == 0) die_usage("--divisor is required (clock cycles per UART bit)");
    if (o.divisor < 2 || o.divisor > (1u << 24))
        die_usage("--divisor must be between 2 and 16777216");
    if (o.poll_every < 1 || o.poll_every > (1u << 24))
        die_usage("--poll-every must be between 1 and 16777216");
    if (!o.linger_set) o.linger = 32 * o.divisor + 256;
#if !VM_TRACE
    if (o.waves) die_usage("this binary was built without waveform support (build with waves)");
#endif
    return o;
}

// A byte queue with O(1) amortised push/pop (compacted when the read offset passes half).
struct ByteQueue {
    std::vector<uint8_t> buf;
    size_t head = 0;
    size_t size() const { return buf.size() - head; }
    bool empty() const { return head == buf.size(); }
    uint8_t pop() { return buf[head++]; }
    const uint8_t* data() const { return buf.data() + head; }
    void push(const uint8_t* p, size_t n) { buf.insert(buf.end(), p, p + n); }
    void push(uint8_t b) { buf.push_back(b); }
    void drop(size_t n) {
        head += n;
        if (head == buf.size()) {
            buf.clear(), head = 0;
        } else if (head > 65536 && head > buf.size() / 2) {
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(head)), head = 0;
        }
    }
    void compact() { drop(0); }
};

// Bytes from the host are read from the pty only while fewer than this are queued, so a fast
// host blocks in write() like on a real link instead of growing our memory.
constexpr size_t RX_QUEUE_MAX = 4096;
// Bytes for a host that is not reading are kept up to this size, then the oldest are dropped
// (a real adapter drops them too).
constexpr size_t TX_BUFFER_MAX = 64u << 20;

class Board {
public:
    Board(const Options& opt, VerilatedContext* ctx)
        : opt_(opt), ctx_(ctx), m_(new Vboard{ctx, "board"}), half_(opt.divisor / 2) {}

    Vboard* model() { return m_.get(); }

#if VM_TRACE
#if VM_TRACE_FST
    using Trace = VerilatedFstC;
#else
    using Trace = VerilatedVcdC;
#endif
    void open_trace(const char* path) {
        tfp_.reset(new Trace);
        m_->trace(tfp_.get(), 99);
        tfp_->open(path);
        if (!tfp_->isOpen()) {
            std::fprintf(stderr, "virtual_board: error: cannot open waveform file %s\n", path);
            std::exit(1);
        }
    }
#endif

    // One clock cycle: rising edge, sample the outputs, drive the next rx bit, falling edge.
    inline void cycle() {
        m_->clk = 1;
        m_->eval();
        ctx_->timeInc(5);
        dump();
        const bool tx = m_->tx & 1;
        const bool busy = m_->busy & 1;
        decode_tx(tx);
        m_->rx = next_rx();
        m_->clk = 0;
        m_->eval();
        ctx_->timeInc(5);
        dump();
        ++cycles_;
        busy_cycles_ += busy;
        if (busy | !tx | (tx_state_ >= 0) | (rx_bit_ >= 0)) last_active_ = cycles_;
    }

    void reset(uint64_t n) {
        m_->rx = 1;
        m_->rst = 1;
        m_->clk = 0;
        m_->eval();
        dump();
        for (uint64_t i = 0; i < n; ++i) cycle();
        m_->rst = 0;
        // The line must be seen high before a falling edge counts as a start bit.
        tx_armed_ = false;
        last_active_ = cycles_;
    }

    // True when nothing can change without input from the host: nothing to shift in, no
    // frame in flight, the design not busy, and `linger` quiet cycles since.
    bool idle() const {
        return rx_q_.empty() && rx_bit_ < 0 && tx_state_ < 0 &&
               cycles_ - last_active_ >= opt_.linger;
    }

    void final() {
        m_->final();
#if VM_TRACE
        if (tfp_) tfp_->close();
#endif
    }

    ByteQueue rx_q_;   // host -> device, not yet shifted out
    ByteQueue tx_out_; // device -> host, not yet written to the pty
    uint64_t cycles_ = 0, busy_cycles_ = 0, bytes_in_ = 0, bytes_out_ = 0;
    uint64_t frame_errors_ = 0, tx_dropped_ = 0;

private:
    inline void dump() {
#if VM_TRACE
        if (tfp_) tfp_->dump(ctx_->time());
#endif
    }

    // The rx level for the next cycle. Each bit lasts exactly `divisor` cycles; frames go
    // out back to back with one stop bit.
    inline uint8_t next_rx() {
        if (rx_count_ > 1) {
            --rx_count_;
            return rx_line_;
        }
        if (rx_bit_ >= 0 && rx_bit_ < 9) {
            ++rx_bit_;
            rx_line_ = (rx_frame_ >> rx_bit_) & 1;
            rx_count_ = opt_.divisor;
        } else if (!rx_q_.empty()) {
            rx_frame_ = static_cast<uint16_t>((rx_q_.pop() << 1) | (1u << 9));
            rx_bit_ = 0;
            rx_line_ = 0;
            rx_count_ = opt_.divisor;
            ++bytes_in_;
        } else {
            rx_bit_ = -1;
            rx_line_ = 1;
            rx_count_ = 0;
        }
        return rx_line_;
    }

    // Sampled after each rising edge: the start bit at half a bit after the falling edge,
    // then every `divisor` cycles (the same clock drives both ends, so there is no drift).
    inline void decode_tx(bool tx) {
        if (tx_state_ < 0) {
            if (tx_armed_ && !tx) {
                tx_state_ = 0;
                tx_count_ = half_;
            } else if (tx) {
                tx_armed_ = true;
            }
            return;
        }
        if (--tx_count_) return;
        if (tx_state_ == 0) {
            if (tx) {  // glitch shorter than half a bit: not a start bit
                tx_state_ = -1;
                return;
            }
            tx_byte_ = 0;
        } else if (tx_state_ <= 8) {
            tx_byte_ |= static_cast<uint8_t>(tx << (tx_state_ - 1));
        } else {
            if (tx) {
                if (tx_out_.size() >= TX_BUFFER_MAX) tx_out_.drop(1), ++tx_dropped_;
                tx_out_.push(tx_byte_);
                ++bytes_out_;
            } else {
                ++frame_errors_;
                tx_armed_ = false;  // a break: wait for the line to go high again
            }
            tx_state_ = -1;
            return;
        }
        ++tx_state_;
        tx_count_ = opt_.divisor;
    }

    const Options& opt_;
    VerilatedContext* ctx_;
    std::unique_ptr<Vboard> m_;
#if VM_TRACE
    std::unique_ptr<Trace> tfp_;
#endif
    const uint64_t half_;
    uint64_t last_active_ = 0;
    // rx shifter: bit index in the frame (-1 idle), cycles left in this bit, line level
    int rx_bit_ = -1;
    uint64_t rx_count_ = 0;
    uint16_t rx_frame_ = 0;
    uint8_t rx_line_ = 1;
    // tx decoder: -1 idle, 0 start bit, 1..8 data bits, 9 stop bit
    int tx_state_ = -1;
    uint64_t tx_count_ = 0;
    uint8_t tx_byte_ = 0;
    bool tx_armed_ = false;
};

struct Pty {
    int master = -1;
    int slave = -1;  // kept open so the master never sees a hang-up when the host closes
    std::string path;

    void open() {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0) die_sys("posix_openpt");
        if (grantpt(master) || unlockpt(master)) die_sys("grantpt/unlockpt");
        const char* name = ptsname(master);
        if (!name) die_sys("ptsname");
        path = name;
        slave = ::open(name, O_RDWR | O_NOCTTY);
        if (slave < 0) die_sys("open pty slave");
        struct termios t;
        if (tcgetattr(slave, &t)) die_sys("tcgetattr");
        cfmakeraw(&t);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(slave, TCSANOW, &t)) die_sys("tcsetattr");
        int fl = fcntl(master, F_GETFL);
        if (fl < 0 || fcntl(master, F_SETFL, fl | O_NONBLOCK) < 0) die_sys("fcntl");
        fcntl(master, F_SETFD, FD_CLOEXEC);
        fcntl(slave, F_SETFD, FD_CLOEXEC);
    }
    void close() {
        if (slave >= 0) ::close(slave), slave = -1;
        if (master >= 0) ::close(master), master = -1;
    }
};

using Clock = std::chrono::steady_clock;

void print_stats(const Board& b, const Options& opt, Clock::time_point t0, double sleeping,
                 const char* reason) {
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const double active = wall - sleeping > 1e-9 ? wall - sleeping : 1e-9;
    std::fprintf(stderr,
                 "{\"virtual_board\": \"%s\", \"cycles\": %llu, \"seconds\": %.6f, "
                 "\"cycles_per_s\": %.0f, \"active_seconds\": %.6f, "
                 "\"active_cycles_per_s\": %.0f, \"busy_cycles\": %llu, \"bytes_in\": %llu, "
                 "\"bytes_out\": %llu, \"frame_errors\": %llu, \"tx_dropped\": %llu, "
                 "\"divisor\": %llu}\n",
                 reason, static_cast<unsigned long long>(b.cycles_), wall,
                 wall > 0 ? b.cycles_ / wall : 0.0, active, b.cycles_ / active,
                 static_cast<unsigned long long>(b.busy_cycles_),
                 static_cast<unsigned long long>(b.bytes_in_),
                 static_cast<unsigned long long>(b.bytes_out_),
                 static_cast<unsigned long long>(b.frame_errors_),
                 static_cast<unsigned long long>(b.tx_dropped_),
                 static_cast<unsigned long long>(opt.divisor));
    std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
    const Options opt = parse_args(argc, argv);

    struct sigaction sa {};
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    sa.sa_handler = on_report;
    sigaction(SIGUSR1, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    // No PR_SET_PDEATHSIG: it fires when the *thread* that started us ends, not the parent.

    const bool watch_stdin = !opt.ignore_stdin && !isatty(STDIN_FILENO);

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
#if VM_TRACE
    if (opt.waves) ctx->traceEverOn(true);
#endif
    Board board(opt, ctx.get());
#if VM_TRACE
    if (opt.waves) board.open_trace(opt.waves);
#endif

    Pty pty;
    pty.open();
    std::printf("%s\n", pty.path.c_str());
    std::fflush(stdout);

    const auto t0 = Clock::now();
    double sleeping = 0.0;
    board.reset(opt.reset_cycles);

    const char* reason = "signal";
    uint8_t buf[RX_QUEUE_MAX];
    for (;;) {
        if (g_stop) break;
        if (ctx->gotFinish()) {
            reason = "finish";
            break;
        }
        if (opt.max_cycles && board.cycles_ >= opt.max_cycles) {
            reason = "max_cycles";
            break;
        }
        if (g_report) {
            g_report = 0;
            print_stats(board, opt, t0, sleeping, "running");
        }

        // Look at the pty and stdin; sleep in poll() only when nothing can happen without
        // the host.
        const bool sleep = !opt.no_idle && board.idle();
        struct pollfd fds[2];
        fds[0].fd = pty.master;
        fds[0].events = static_cast<short>((board.rx_q_.size() < RX_QUEUE_MAX ? POLLIN : 0) |
                                           (board.tx_out_.empty() ? 0 : POLLOUT));
        fds[0].revents = 0;
        fds[1].fd = watch_stdin ? STDIN_FILENO : -1;
        fds[1].events = POLLIN;
        fds[1].revents = 0;
        const auto before = sleep ? Clock::now() : Clock::time_point{};
        const int n = poll(fds, 2, sleep ? 100 : 0);
        if (sleep) sleeping += std::chrono::duration<double>(Clock::now() - before).count();
        if (n < 0 && errno != EINTR) die_sys("poll");
        if (n > 0) {
            if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                const ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
                if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
                    reason = "stdin_eof";
                    break;
                }
            }
            if (fds[0].revents & POLLIN) {
                const ssize_t r = read(pty.master, buf, RX_QUEUE_MAX - board.rx_q_.size());
                if (r > 0) {
                    board.rx_q_.compact();
                    board.rx_q_.push(buf, static_cast<size_t>(r));
                } else if (r < 0 && errno != EAGAIN && errno != EINTR && errno != EIO) {
                    die_sys("read pty");
                }
            }
            if (fds[0].revents & POLLOUT) {
                const ssize_t w = write(pty.master, board.tx_out_.data(), board.tx_out_.size());
                if (w > 0) {
                    board.tx_out_.drop(static_cast<size_t>(w));
                } else if (w < 0 && errno != EAGAIN && errno != EINTR && errno != EIO) {
                    die_sys("write pty");
                }
            }
            if ((fds[0].revents & (POLLHUP | POLLERR)) && !(fds[0].revents & (POLLIN | POLLOUT))) {
                // Not expected while we hold the slave open; do not spin on it.
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, nullptr);
            }
        }
        if (!opt.no_idle && board.idle()) continue;  // nothing arrived: back to poll()

        uint64_t batch = opt.poll_every;
        if (opt.max_cycles && opt.max_cycles - board.cycles_ < batch)
            batch = opt.max_cycles - board.cycles_;
        for (uint64_t i = 0; i < batch; ++i) board.cycle();
    }

    board.final();
    print_stats(board, opt, t0, sleeping, reason);
    pty.close();
    return 0;
}
