import SwiftProcKit

/// A small command-line parser: `--long value`, `--long=value`, `-s value`, `-svalue`, flags,
/// repeatable options, positionals, and `--` to end options. Enough for swiftproc's commands,
/// and it keeps the package free of dependencies.
struct Option: Sendable {
    let long: String
    let short: Character?
    /// The placeholder in help (`PATH`); nil for a flag.
    let value: String?
    let help: String

    static func flag(_ long: String, _ short: Character? = nil, _ help: String) -> Option {
        Option(long: long, short: short, value: nil, help: help)
    }

    static func value(_ long: String, _ short: Character? = nil, _ placeholder: String, _ help: String) -> Option {
        Option(long: long, short: short, value: placeholder, help: help)
    }
}

/// The result of parsing one command's arguments.
struct ParsedArguments: Sendable {
    private(set) var values: [String: [String]] = [:]
    private(set) var flags: Set<String> = []
    var positionals: [String] = []

    func has(_ flag: String) -> Bool { flags.contains(flag) }
    /// The last value given for `option`.
    func value(_ option: String) -> String? { values[option]?.last }
    /// Every value given for a repeatable option, in order.
    func all(_ option: String) -> [String] { values[option] ?? [] }

    mutating func add(_ option: Option, _ value: String?) {
        if let value { values[option.long, default: []].append(value) } else { flags.insert(option.long) }
    }
}

/// A mistake in how a command was called; printed with a pointer to `--help`.
struct UsageError: Error, CustomStringConvertible {
    let message: String
    let command: String
    var description: String { message }
}

/// With `stopAtFirstPositional` (`run CMD ARGS...`), the first argument that is not an option
/// and everything after it are positionals, so the command's own options pass through.
func parseArguments(_ args: [String], options: [Option], command: String,
                    stopAtFirstPositional: Bool = false) throws(UsageError) -> ParsedArguments {
    var parsed = ParsedArguments()
    var i = 0
    func option(long: String) -> Option? { options.first { $0.long == long } }
    func option(short: Character) -> Option? { options.first { $0.short == short } }
    while i < args.count {
        let arg = args[i]
        i += 1
        if arg == "--" {
            parsed.positionals += args[i...]
            break
        }
        if arg.hasPrefix("--") {
            let body = arg.dropFirst(2)
            let name = body.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            guard let opt = option(long: name) else {
                let known = options.map { "--" + $0.long }
                let hint = closestMatch(to: "--" + name, in: known).map { " (did you mean \($0)?)" } ?? ""
                throw UsageError(message: "unknown option --\(name)\(hint)", command: command)
            }
            if opt.value != nil {
                if let eq = body.firstIndex(of: "=") {
                    parsed.add(opt, String(body[body.index(after: eq)...]))
                } else {
                    guard i < args.count else { throw UsageError(message: "--\(name) needs a value (\(opt.value!))", command: command) }
                    parsed.add(opt, args[i])
                    i += 1
                }
            } else {
                if body.contains("=") { throw UsageError(message: "--\(name) takes no value", command: command) }
                parsed.add(opt, nil)
            }
        } else if arg.hasPrefix("-") && arg.count > 1 && !isNumber(arg) {
            let letters = Array(arg.dropFirst())
            var k = 0
            while k < letters.count {
                guard let opt = option(short: letters[k]) else {
                    throw UsageError(message: "unknown option -\(letters[k])", command: command)
                }
                if opt.value != nil {
                    let rest = String(letters[(k + 1)...])
                    if !rest.isEmpty {
                        parsed.add(opt, rest)
                    } else {
                        guard i < args.count else { throw UsageError(message: "-\(letters[k]) needs a value (\(opt.value!))", command: command) }
                        parsed.add(opt, args[i])
                        i += 1
                    }
                    break
                }
                parsed.add(opt, nil)
                k += 1
            }
        } else {
            parsed.positionals.append(arg)
            if stopAtFirstPositional {
                parsed.positionals += args[i...]
                break
            }
        }
    }
    return parsed
}

private func isNumber(_ s: String) -> Bool { Int(s) != nil }

/// The candidate nearest to `word`, when it is close enough to be a typo.
func closestMatch(to word: String, in candidates: [String]) -> String? {
    Suggestions.closest(to: word, among: candidates).first
}
