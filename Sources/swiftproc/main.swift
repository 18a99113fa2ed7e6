// Entry point; the command table arrives with the CLI work.
import SwiftProcKit
print("swiftproc (in development)")
