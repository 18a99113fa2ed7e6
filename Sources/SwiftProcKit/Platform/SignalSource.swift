import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a Unix signal into calls of `handler` on a private queue, for as long as it is kept.
///
/// Create these before spawning children: while `Platform.runWithCleanSignalMask` briefly opens the
/// spawning thread's mask, a signal with a source is routed to libdispatch rather than lost, and
/// libdispatch's handler (unlike `SIG_IGN`) is reset to the default in children at exec.
public final class SignalSource: @unchecked Sendable {
    private let source: DispatchSourceSignal

    public init(_ number: Int32, handler: @escaping @Sendable () -> Void) {
        // A signal with a source must not also run its default action (termination for INT/TERM/HUP).
        // Not SIG_IGN: libdispatch installs its own handler only later, on its manager thread, and
        // a child spawned before that would inherit SIG_IGN across exec and ignore Ctrl-C for
        // life. A handler is reset to the default in children at exec.
        if number != SIGCHLD { Platform.catchWithoutAction(number) }
        source = DispatchSource.makeSignalSource(signal: number, queue: DispatchQueue(label: "swiftproc.signal.\(number)"))
        source.setEventHandler(handler: handler)
        source.resume()
    }

    deinit { source.cancel() }
}

