/*!
The operating-system edge: ICMP sockets and their control messages
([`socket`]), privilege handling ([`privilege`]), the system-call filter
([`seccomp`]), thread CPU clocks ([`clock`]), executable memory for
plugins' native code ([`code_memory`]) and the process set-up std's
runtime would do ([`process`]). Apart from loading compiled
plugins (`runtime`), placing the built-ins' native code in the text
segment (`builtin`) and naming the binary's C `main` (`no_mangle`), the
host allows `unsafe` only in this module, each block with a `SAFETY`
note.
*/

pub mod clock;
pub mod code_memory;
pub mod privilege;
pub mod process;
pub mod seccomp;
pub mod socket;
