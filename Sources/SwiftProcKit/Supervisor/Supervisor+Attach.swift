import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `swiftproc attach GROUP.N`: a terminal connected to an instance's pseudo-terminal.
extension Supervisor {
    /// Connects a client to instance `name` (or a machine id): its raw output, its keyboard.
    /// One client at a time — a second is refused, saying who holds it, rather than taking over
    /// a debugging session mid-keystroke.
    public func attach(_ name: String, rows: UInt16, columns: UInt16) throws(ControlServiceError) -> AttachSession {
        let wanted = instanceName(machineID: name) ?? name
        guard let inst = instances.first(where: { $0.name == wanted && $0.wanted }) else {
            let known = instances.filter(\.wanted).map(\.name)
            throw ControlServiceError("no instance \"\(name)\"; running: \(known.isEmpty ? "none" : known.joined(separator: ", "))")
        }
        guard groupPlan(inst.group)?.usePTY == true else {
            throw ControlServiceError("\(inst.name) runs on pipes (--no-tty or --pipes), and attach needs its pseudo-terminal; "
                                      + "start it without those to attach")
        }
        guard inst.state == .running, let pid = inst.pid, let terminal = inst.terminal else {
            throw ControlServiceError("\(inst.name) is not running (\(inst.describe(now: Platform.monotonicSeconds()).state))")
        }
        if let current = inst.attached, !current.isEnded {
            throw ControlServiceError("\(inst.name) is already attached from another terminal; detach there first (Ctrl-])")
        }
        let copy = dup(terminal)
        guard copy >= 0 else { throw ControlServiceError("cannot attach to \(inst.name): \(String(cString: strerror(errno)))") }
        Platform.setCloseOnExec(copy)
        let session = AttachSession(instance: inst.name, processGroup: pid, terminal: copy)
        inst.attached = session
        log.setTap(source: inst.name, session)
        if rows > 0 && columns > 0 { session.resize(rows: rows, columns: columns) }
        log.system("\(inst.name): a terminal attached")
        return session
    }

    /// The client left; the instance runs on.
    public func detach(_ session: AttachSession) {
        session.end()
        guard let inst = instances.first(where: { $0.attached === session }) else { return }
        inst.attached = nil
        log.setTap(source: inst.name, nil)
        log.system("\(inst.name): the terminal detached")
    }
}
