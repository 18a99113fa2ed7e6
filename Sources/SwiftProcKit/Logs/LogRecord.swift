/// One line of merged output, as kept in the recent-lines ring and sent to `swiftproc logs` clients.
///
/// `text` holds the line's raw bytes without its terminator. Child output is not required to be
/// UTF-8, and the live stream (`start`'s stdout) passes it through byte-exact; only the JSON
/// control protocol turns it into a `String` (lossily).
public struct LogRecord: Sendable, Equatable {
    /// Seconds since 1970 when the line was read.
    public var time: Double
    /// Who wrote it: an instance (`app.2`), or `system` / `release` for swiftproc's own lines.
    public var source: String
    /// The process group (`app`), or the same as `source` for `system` / `release`.
    public var group: String
    /// The group's colour slot (file order), so every consumer colours a group alike.
    public var colorIndex: Int
    public var text: [UInt8]

    public init(time: Double, source: String, group: String, colorIndex: Int, text: [UInt8]) {
        self.time = time
        self.source = source
        self.group = group
        self.colorIndex = colorIndex
        self.text = text
    }
}

/// Receives every new ``LogRecord`` after it is written, e.g. a following `swiftproc logs` client.
///
/// `receive` is called on the log path (the reader thread, or whoever logged a system line),
/// so it must never block: queue the record, and drop (counting the drops) when the queue is full.
public protocol LogSubscriber: AnyObject, Sendable {
    func receive(_ record: LogRecord)
}
