/// Spots commands that cannot run as several instances on one machine: a port written into the
/// command (`gunicorn --bind :8000`, `rails server -p 3000`, `PORT=3000 node app.js`).
///
/// On Fly each machine has its own network, so a fixed port is fine there; locally `app=2`
/// means two processes on one machine, and swiftproc's proxy already listens on the service's
/// `internal_port`. Each instance gets its own `$PORT` instead — the command has to use it.
enum CommandLint {
    /// A literal port in `command`, with the words that set it; nil when the command uses
    /// `$PORT` (then the literal is someone else's) or names no port.
    static func hardCodedPort(in command: String) -> (port: Int, words: String)? {
        if command.contains("$PORT") || command.contains("${PORT") { return nil }
        let words = ShellQuoting.split(command)
        for (i, word) in words.enumerated() {
            let next = i + 1 < words.count ? words[i + 1] : nil
            if ["-p", "--port"].contains(word), let next, let port = portNumber(next) {
                return (port, "\(word) \(next)")
            }
            for prefix in ["--port=", "-p=", "PORT="] where word.hasPrefix(prefix) {
                if let port = portNumber(String(word.dropFirst(prefix.count))) { return (port, word) }
            }
            if let port = listenAddressPort(word) {
                return (port, ["-b", "--bind", "--listen", "-l"].contains(words[max(0, i - 1)]) && i > 0
                        ? "\(words[i - 1]) \(word)" : word)
            }
            if word.hasPrefix("--bind=") || word.hasPrefix("--listen="),
               let port = listenAddressPort(String(word.drop { $0 != "=" }.dropFirst())) {
                return (port, word)
            }
        }
        return nil
    }

    /// `3000` → 3000 (1...65535).
    static func portNumber(_ text: String) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy(\.isASCIIDigitCharacter), let n = Int(text),
              (1...65535).contains(n) else { return nil }
        return n
    }

    /// A listening address on every interface or loopback: `:8000`, `0.0.0.0:8000`,
    /// `[::]:8080`, `localhost:3000`, `tcp://0.0.0.0:3000`. Other host:port words (a Redis URL,
    /// `module:app`) are someone else's address or no address.
    static func listenAddressPort(_ word: String) -> Int? {
        var text = Substring(word)
        for scheme in ["tcp://", "http://"] where text.hasPrefix(scheme) { text = text.dropFirst(scheme.count) }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = text[..<colon]
        guard ["", "0.0.0.0", "127.0.0.1", "localhost", "[::]", "::", "[::1]", "*"].contains(String(host)) else { return nil }
        return portNumber(String(text[text.index(after: colon)...]))
    }
}

private extension Character {
    var isASCIIDigitCharacter: Bool { ("0"..."9").contains(self) }
}

extension AppConfig {
    /// Warnings for groups whose command hard-codes a port (see ``CommandLint``).
    func hardCodedPortWarnings() -> [ConfigWarning] {
        var warnings: [ConfigWarning] = []
        for group in groups {
            guard let command = group.command, let found = CommandLint.hardCodedPort(in: command) else { continue }
            let served = ([httpService?.internalPort].compactMap { $0 } + services.map(\.internalPort))
            var why = "locally each instance gets its own $PORT, so a second instance cannot listen on \(found.port)"
            if served.contains(found.port) {
                why = "swiftproc's proxy listens on \(found.port) (the service's internal_port) and sends each "
                    + "instance's connections to its own $PORT"
            }
            var position: FilePosition?
            if case .processes(let p) = group.source { position = p }
            let from = position == nil ? " from \(group.source)" : ""
            warnings.append(ConfigWarning(
                "\(group.name)'s command\(from) hard-codes port \(found.port) (\"\(found.words)\"): \(why); "
                + "use $PORT with a fallback, e.g. ${PORT:-\(found.port)}, which also works on Fly", at: position))
        }
        return warnings
    }
}
