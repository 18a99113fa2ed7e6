import Dispatch

/// Reads newline-terminated lines from a socket, with a length limit and an optional deadline.
struct LineReader {
    enum Outcome: Equatable {
        /// One line, without its `\n`.
        case line([UInt8])
        /// More than `limit` bytes arrived without a newline.
        case tooLong
        /// The peer closed; `partial` when it left an unterminated line behind.
        case endOfFile(partial: Bool)
        case timedOut
        case failed(Int32)
    }

    let fd: Int32
    private var buffer: [UInt8] = []
    /// Where unread bytes start in `buffer`.
    private var head = 0
    /// How far `buffer` (from `head`) is known to hold no newline.
    private var scanned = 0
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)

    init(fd: Int32) { self.fd = fd }

    /// Bytes read past the last line returned (what follows a reply on a streaming connection).
    var unread: [UInt8] { Array(buffer[head...]) }

    /// The next line. `deadline` is a `DispatchTime` (nil: wait forever).
    mutating func next(limit: Int, deadline: DispatchTime? = nil) -> Outcome {
        while true {
            if let newline = buffer[(head + scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
                if newline - head > limit { return .tooLong }
                let line = Array(buffer[head..<newline])
                head = newline + 1
                scanned = 0
                if head > 64 * 1024, head * 2 > buffer.count {
                    buffer.removeFirst(head)
                    head = 0
                }
                return .line(line)
            }
            scanned = buffer.count - head
            if scanned > limit { return .tooLong }
            var timeout: Int32 = -1
            if let deadline {
                let now = DispatchTime.now().uptimeNanoseconds
                guard deadline.uptimeNanoseconds > now else { return .timedOut }
                let milliseconds = (deadline.uptimeNanoseconds - now + 999_999) / 1_000_000
                timeout = Int32(clamping: milliseconds)
            }
            switch Sockets.receive(fd, into: &chunk, timeoutMilliseconds: timeout) {
            case .bytes(let count):
                buffer.append(contentsOf: chunk[0..<count])
            case .endOfFile:
                return .endOfFile(partial: buffer.count > head)
            case .timedOut:
                if deadline == nil { continue }
                return .timedOut
            case .failed(let code):
                return .failed(code)
            }
        }
    }
}

/// A deadline `seconds` from now.
func deadline(after seconds: Double) -> DispatchTime {
    .now() + .nanoseconds(Int(min(seconds, 1e9) * 1e9))
}
