// The small HTTP/1.1 subset swiftproc-demo speaks: request heads with Content-Length bodies,
// keep-alive, pipelining, Content-Length responses. No chunked request bodies, no upgrades.

/// One parsed request head.
struct Request: Sendable {
    var method: String
    var target: String
    var version: String
    /// Header names lower-cased; repeated headers are joined with ", ".
    var headers: [String: String]

    /// Whether the client wants the connection kept open after this exchange.
    var keepAlive: Bool {
        let tokens = (headers["connection"] ?? "").lowercased().split(separator: ",")
            .map { $0.trimmingSpaces() }
        if tokens.contains("close") { return false }
        if version == "HTTP/1.0" { return tokens.contains("keep-alive") }
        return true
    }

    /// The request line as it appeared (for the log).
    var line: String { "\(method) \(target) \(version)" }
}

enum ParseResult {
    /// The head is complete: the request, and how many bytes of the buffer it used.
    case request(Request, consumed: Int)
    /// More bytes are needed.
    case incomplete
    /// Not HTTP we can answer; respond with `status` and close.
    case invalid(status: Int, reason: String)
}

enum HTTPParser {
    /// The most bytes a request head may take (request line + headers + blank line).
    static let maxHeadBytes = 64 * 1024

    /// Looks for a complete request head at the start of `buffer`.
    static func parse(_ buffer: [UInt8]) -> ParseResult {
        guard let end = headEnd(buffer) else {
            return buffer.count > maxHeadBytes ? .invalid(status: 431, reason: "request head too large") : .incomplete
        }
        if end.headLength > maxHeadBytes { return .invalid(status: 431, reason: "request head too large") }
        // Split on bytes: as Swift `Character`s, "\r\n" is one grapheme and would not match "\n".
        var lines = buffer[0..<end.headLength].split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            Substring(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
        }
        // RFC 9112 §2.2: ignore empty lines before the request line.
        while let first = lines.first, first.isEmpty { lines.removeFirst() }
        guard let requestLine = lines.first else { return .incomplete }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else {
            return .invalid(status: 400, reason: "malformed request line")
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                return .invalid(status: 400, reason: "malformed header line")
            }
            let name = line[..<colon].lowercased()
            if name.contains(" ") || name.contains("\t") { return .invalid(status: 400, reason: "malformed header name") }
            let value = line[line.index(after: colon)...].trimmingSpaces()
            if let old = headers[name] { headers[name] = old + ", " + value } else { headers[name] = value }
        }
        let request = Request(method: String(parts[0]), target: String(parts[1]), version: String(parts[2]),
                              headers: headers)
        return .request(request, consumed: end.consumed)
    }

    /// The end of the head: the index after `\r\n\r\n` (or a bare `\n\n`).
    private static func headEnd(_ buffer: [UInt8]) -> (headLength: Int, consumed: Int)? {
        var i = 0
        // Skip leading blank lines so a stray CRLF between pipelined requests is not an empty head.
        while i < buffer.count, buffer[i] == 0x0D || buffer[i] == 0x0A { i += 1 }
        var j = i
        while j < buffer.count {
            if buffer[j] == 0x0A {
                if j + 1 < buffer.count, buffer[j + 1] == 0x0A { return (j + 1, j + 2) }
                if j + 2 < buffer.count, buffer[j + 1] == 0x0D, buffer[j + 2] == 0x0A { return (j + 1, j + 3) }
            }
            j += 1
        }
        return nil
    }
}

/// A response head plus a small body, ready to send.
struct Response {
    var status: Int
    var contentType = "text/plain; charset=utf-8"
    var body: [UInt8]
    /// Length announced in Content-Length when the body is streamed separately (`/bytes/N`).
    var streamedLength: Int? = nil
    var extraHeaders: [(String, String)] = []

    init(status: Int, _ text: String) {
        self.status = status
        self.body = Array(text.utf8)
    }

    var contentLength: Int { streamedLength ?? body.count }

    func head(keepAlive: Bool, instance: String) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(Response.reason(status))\r\n"
        text += "Content-Type: \(contentType)\r\n"
        text += "Content-Length: \(contentLength)\r\n"
        text += "Connection: \(keepAlive ? "keep-alive" : "close")\r\n"
        text += "X-Instance: \(instance)\r\n"
        for (name, value) in extraHeaders { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        default: return "Status \(status)"
        }
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
