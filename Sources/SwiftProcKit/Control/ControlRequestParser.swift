import Foundation

/// Turns one request line into a ``ControlRequest``, or a one-line error for the client.
enum ControlRequestParser {
    private struct Head: Decodable {
        var version: Int?
        var command: String?
    }

    static func parse(_ line: [UInt8]) -> Result<ControlRequest, ControlServiceError> {
        var bytes = line[...]
        if bytes.last == UInt8(ascii: "\r") { bytes = bytes.dropLast() }
        let data = Data(bytes)
        let decoder = JSONDecoder()
        guard let head = try? decoder.decode(Head.self, from: data) else {
            return .failure(ControlServiceError("malformed request: expected one JSON object per line, like {\"version\":\(ControlProtocol.version),\"command\":\"status\"}"))
        }
        guard let version = head.version else {
            return .failure(ControlServiceError("malformed request: no \"version\""))
        }
        guard version == ControlProtocol.version else {
            return .failure(ControlServiceError("protocol version \(version) not supported (this swiftproc speaks \(ControlProtocol.version))"))
        }
        guard let command = head.command else {
            return .failure(ControlServiceError("malformed request: no \"command\""))
        }
        guard ControlRequest.Command(rawValue: command) != nil else {
            let known = ControlRequest.Command.allCases.map(\.rawValue).joined(separator: ", ")
            return .failure(ControlServiceError("unknown command \"\(command)\"; known: \(known)"))
        }
        do {
            return .success(try decoder.decode(ControlRequest.self, from: data))
        } catch let error as DecodingError {
            return .failure(ControlServiceError("malformed request: \(describe(error))"))
        } catch {
            return .failure(ControlServiceError("malformed request"))
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String {
            path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\"\(field(context.codingPath))\" should be \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\"\(field(context.codingPath))\" should be \(typeName(type)), not null"
        case .keyNotFound(let key, _):
            return "no \"\(key.stringValue)\""
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "bad value for \"\(field(context.codingPath))\""
        @unknown default:
            return "not a valid request"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        case is [String].Type: return "a list of strings"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "a list of strings" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return name
        }
    }
}
