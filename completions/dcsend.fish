# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dcsend_global_optspecs
    string join \n raw compress threshold= max-buffer= chunk-size= peer= qr= join-timeout= offer answer sdp-out= sdp-in= long-token stun= turn= turn-user= turn-password-file= relay-only connect-timeout= bind= socket-buffer= liveness-timeout= q/quiet v/verbose progress= stats= h/help V/version
end

function __fish_dcsend_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dcsend_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dcsend_using_subcommand
    set -l cmd (__fish_dcsend_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dcsend -n "__fish_dcsend_needs_command" -l threshold -d 'Low-water threshold of the threshold-based sender: auto or a size [default: auto]' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l max-buffer -d 'Memory bound of --threshold auto: the most it may let wait in the channel [default: 32MiB]' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l chunk-size -d 'Size of each data message [default: 64KiB]' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l peer -d 'Connect through a signaling server (`dcsend signal`) instead of copy-paste' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l qr -d 'With --peer: show the page URL as a QR code, for a phone\'s browser' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always, into whatever stderr is'"
complete -c dcsend -n "__fish_dcsend_needs_command" -l join-timeout -d 'With --peer: how long to wait for the other side to join the room' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l sdp-out -d 'Write our token to PATH (atomically; a FIFO is written directly) instead of stderr' -r -F
complete -c dcsend -n "__fish_dcsend_needs_command" -l sdp-in -d 'Read the peer\'s token from PATH ("-" = stdin) instead of the terminal' -r -F
complete -c dcsend -n "__fish_dcsend_needs_command" -l stun -d 'STUN server, e.g. stun:stun.example.org:3478 (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l turn -d 'TURN server, e.g. turn:turn.example.org:3478 (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l turn-user -d 'TURN user name' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l turn-password-file -d 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)' -r -F
complete -c dcsend -n "__fish_dcsend_needs_command" -l connect-timeout -d 'Give up if the channel is not open this long after the peer\'s token arrived; also bounds the wait for --sdp-in PATH to appear' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l bind -d 'Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface]' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l socket-buffer -d 'Kernel buffer to ask for on each UDP socket [default: 16MiB]' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l liveness-timeout -d 'Declare the peer gone after this much silence once connected' -r
complete -c dcsend -n "__fish_dcsend_needs_command" -l progress -d 'When to show the live view on stderr' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always, into whatever stderr is (a file or pipe gets the frames too); never with TERM=dumb'
never\t'Never'"
complete -c dcsend -n "__fish_dcsend_needs_command" -l stats -d 'Write progress and a final summary as NDJSON to PATH ("-" = stderr)' -r -F
complete -c dcsend -n "__fish_dcsend_needs_command" -l raw -d 'Send only plain binary messages, then close the channel, for receivers that are not dcsend (a browser, a Pion example)'
complete -c dcsend -n "__fish_dcsend_needs_command" -l compress -d 'Compress each message with zstd when that makes it at least 1/16 smaller (text, logs, source trees); a receiver that does not take compressed data gets it as it is'
complete -c dcsend -n "__fish_dcsend_needs_command" -l offer -d 'Make the offer (the sender\'s default)'
complete -c dcsend -n "__fish_dcsend_needs_command" -l answer -d 'Wait for the peer\'s offer and answer it (the receiver\'s default)'
complete -c dcsend -n "__fish_dcsend_needs_command" -l long-token -d 'Print our token in Pion\'s long form, for a peer that is not dcsend'
complete -c dcsend -n "__fish_dcsend_needs_command" -l relay-only -d 'Use only TURN-relayed candidates'
complete -c dcsend -n "__fish_dcsend_needs_command" -s q -l quiet -d 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
complete -c dcsend -n "__fish_dcsend_needs_command" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
complete -c dcsend -n "__fish_dcsend_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dcsend -n "__fish_dcsend_needs_command" -s V -l version -d 'Print version'
complete -c dcsend -n "__fish_dcsend_needs_command" -a "send" -d 'Send files or stdin (the default action)'
complete -c dcsend -n "__fish_dcsend_needs_command" -a "recv" -d 'Receive into stdout, a file or a folder'
complete -c dcsend -n "__fish_dcsend_needs_command" -a "bench" -d 'Measure throughput over a loopback pair for a sweep of thresholds and message sizes'
complete -c dcsend -n "__fish_dcsend_needs_command" -a "signal" -d 'Run the signaling server that `--peer URL` connects through'
complete -c dcsend -n "__fish_dcsend_needs_command" -a "doctor" -d 'Check what this machine\'s network allows: public address, NAT type, TURN'
complete -c dcsend -n "__fish_dcsend_needs_command" -a "completions" -d 'Print a shell completion script to stdout'
complete -c dcsend -n "__fish_dcsend_needs_command" -a "man" -d 'Write man pages (dcsend.1 and one per subcommand) into a folder'
complete -c dcsend -n "__fish_dcsend_needs_command" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l threshold -d 'Low-water threshold of the threshold-based sender: auto or a size [default: auto]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l max-buffer -d 'Memory bound of --threshold auto: the most it may let wait in the channel [default: 32MiB]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l chunk-size -d 'Size of each data message [default: 64KiB]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l peer -d 'Connect through a signaling server (`dcsend signal`) instead of copy-paste' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l qr -d 'With --peer: show the page URL as a QR code, for a phone\'s browser' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always, into whatever stderr is'"
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l join-timeout -d 'With --peer: how long to wait for the other side to join the room' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l sdp-out -d 'Write our token to PATH (atomically; a FIFO is written directly) instead of stderr' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l sdp-in -d 'Read the peer\'s token from PATH ("-" = stdin) instead of the terminal' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l stun -d 'STUN server, e.g. stun:stun.example.org:3478 (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l turn -d 'TURN server, e.g. turn:turn.example.org:3478 (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l turn-user -d 'TURN user name' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l turn-password-file -d 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l connect-timeout -d 'Give up if the channel is not open this long after the peer\'s token arrived; also bounds the wait for --sdp-in PATH to appear' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l bind -d 'Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l socket-buffer -d 'Kernel buffer to ask for on each UDP socket [default: 16MiB]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l liveness-timeout -d 'Declare the peer gone after this much silence once connected' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l progress -d 'When to show the live view on stderr' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always, into whatever stderr is (a file or pipe gets the frames too); never with TERM=dumb'
never\t'Never'"
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l stats -d 'Write progress and a final summary as NDJSON to PATH ("-" = stderr)' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l raw -d 'Send only plain binary messages, then close the channel, for receivers that are not dcsend (a browser, a Pion example)'
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l compress -d 'Compress each message with zstd when that makes it at least 1/16 smaller (text, logs, source trees); a receiver that does not take compressed data gets it as it is'
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l offer -d 'Make the offer (the sender\'s default)'
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l answer -d 'Wait for the peer\'s offer and answer it (the receiver\'s default)'
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l long-token -d 'Print our token in Pion\'s long form, for a peer that is not dcsend'
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -l relay-only -d 'Use only TURN-relayed candidates'
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -s q -l quiet -d 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
complete -c dcsend -n "__fish_dcsend_using_subcommand send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -s o -l output-path -d 'Write to this file, or into this folder when it ends with "/" or is a folder' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l peer -d 'Connect through a signaling server (`dcsend signal`) instead of copy-paste' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l qr -d 'With --peer: show the page URL as a QR code, for a phone\'s browser' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always, into whatever stderr is'"
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l join-timeout -d 'With --peer: how long to wait for the other side to join the room' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l sdp-out -d 'Write our token to PATH (atomically; a FIFO is written directly) instead of stderr' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l sdp-in -d 'Read the peer\'s token from PATH ("-" = stdin) instead of the terminal' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l stun -d 'STUN server, e.g. stun:stun.example.org:3478 (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l turn -d 'TURN server, e.g. turn:turn.example.org:3478 (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l turn-user -d 'TURN user name' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l turn-password-file -d 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l connect-timeout -d 'Give up if the channel is not open this long after the peer\'s token arrived; also bounds the wait for --sdp-in PATH to appear' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l bind -d 'Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l socket-buffer -d 'Kernel buffer to ask for on each UDP socket [default: 16MiB]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l liveness-timeout -d 'Declare the peer gone after this much silence once connected' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l progress -d 'When to show the live view on stderr' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always, into whatever stderr is (a file or pipe gets the frames too); never with TERM=dumb'
never\t'Never'"
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l stats -d 'Write progress and a final summary as NDJSON to PATH ("-" = stderr)' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -s f -l force -d 'Overwrite existing files'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l resume -d 'Continue a broken transfer from the NAME.part it left (needs -o)'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l sink -d 'Verify what arrives, then discard it (nothing is written): for measuring a path'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l offer -d 'Make the offer (the sender\'s default)'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l answer -d 'Wait for the peer\'s offer and answer it (the receiver\'s default)'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l long-token -d 'Print our token in Pion\'s long form, for a peer that is not dcsend'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -l relay-only -d 'Use only TURN-relayed candidates'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -s q -l quiet -d 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
complete -c dcsend -n "__fish_dcsend_using_subcommand recv" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l threshold -d 'Low-water thresholds to sweep, comma-separated: sizes, or "auto" for the adaptive mode' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l max-buffer -d 'Memory bound of the "auto" threshold [default: 32MiB]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l chunk-size -d 'Message sizes to sweep, comma-separated' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l size -d 'Bytes to send in each run' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l duration -d 'End each run after this long, even if --size is not reached' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l runs -d 'Measured runs per case' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l warmup -d 'Unmeasured runs before the measured ones, per case' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l baseline -d 'Also move the same bytes over a loopback TCP socket and report each case as a ratio of it' -r -f -a "tcp\t'A TCP connection over 127.0.0.1'"
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l export-json -d 'Write the results as JSON to PATH ("-" = stdout)' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l export-csv -d 'Write the results as CSV (one row per case, with a header) to PATH ("-" = stdout)' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l export-markdown -d 'Write the results as a Markdown table to PATH ("-" = stdout)' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l socket-buffer -d 'Kernel buffer to ask for on each UDP socket [default: 16MiB]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -l progress -d 'When to show the live view on stderr' -r -f -a "auto\t'When stderr is a terminal'
always\t'Always, into whatever stderr is (a file or pipe gets the frames too); never with TERM=dumb'
never\t'Never'"
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -s q -l quiet -d 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -s v -l verbose -d 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
complete -c dcsend -n "__fish_dcsend_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l listen -d 'Address to listen on (port 0 = any free port)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l store -d 'Keep rooms in Redis (redis://HOST:PORT/DB) instead of this process\'s memory' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l stun -d 'Also answer STUN Binding requests on this UDP address (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l stun-url -d 'The STUN server handed to peers, instead of this server\'s own --stun (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l turn -d 'A TURN server handed to peers with short-lived credentials (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l turn-secret-file -d 'File holding the TURN servers\' shared secret (coturn\'s static-auth-secret)' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l turn-ttl -d 'How long the TURN credentials of a join answer are valid' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l room-ttl -d 'A room with no request from either peer for this long expires' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l max-rooms -d 'Rooms open at once, over all clients' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l max-rooms-per-client -d 'Rooms open at once that one client network created' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l claim-timeout -d 'A peer that sends no message this long after joining loses its seat' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l presence-timeout -d 'A peer with no request open and none for this long has left: its seat is freed' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l max-connections -d 'Connections open at once, over all clients' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l max-connections-per-client -d 'Connections open at once from one client network (see --max-rooms-per-client)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l header-timeout -d 'A request\'s head must arrive within this (and a kept-alive connection\'s next request)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l idle-timeout -d 'A connection with no request being handled for this long is closed' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l client-prefix-v4 -d 'Bits of an IPv4 address that name the client\'s network (0-32)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l client-prefix-v6 -d 'Bits of an IPv6 address that name the client\'s network (0-128)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -l log-format -d 'Log lines as text or as JSON objects (one per line), on stderr' -r -f -a "text\t'One line per event: time, level, module, message, then key=value fields'
json\t'One JSON object per line'"
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -s q -l quiet -d 'Log less (warnings and errors only)'
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -s v -l verbose -d 'Log more (-v debug, -vv trace). RUST_LOG also works'
complete -c dcsend -n "__fish_dcsend_using_subcommand signal" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dcsend -n "__fish_dcsend_using_subcommand doctor" -l stun -d 'STUN server to ask for this machine\'s public address (repeatable)' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand doctor" -l turn -d 'TURN server to ask for an allocation (repeatable); credentials as for sending' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand doctor" -l turn-user -d 'TURN user name' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand doctor" -l turn-password-file -d 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)' -r -F
complete -c dcsend -n "__fish_dcsend_using_subcommand doctor" -l peer -d 'Check the STUN and TURN servers a signaling server hands out, e.g. https://signal.example.org/' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand doctor" -l bind -d 'Local UDP address to probe from [default: 0.0.0.0:0]' -r
complete -c dcsend -n "__fish_dcsend_using_subcommand doctor" -l json -d 'Print the findings as one JSON object on stdout'
complete -c dcsend -n "__fish_dcsend_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dcsend -n "__fish_dcsend_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dcsend -n "__fish_dcsend_using_subcommand man" -s h -l help -d 'Print help'
complete -c dcsend -n "__fish_dcsend_using_subcommand help; and not __fish_seen_subcommand_from send recv bench signal doctor completions man help" -f -a "send" -d 'Send files or stdin (the default action)'
complete -c dcsend -n "__fish_dcsend_using_subcommand help; and not __fish_seen_subcommand_from send recv bench signal doctor completions man help" -f -a "recv" -d 'Receive into stdout, a file or a folder'
complete -c dcsend -n "__fish_dcsend_using_subcommand help; and not __fish_seen_subcommand_from send recv bench signal doctor completions man help" -f -a "bench" -d 'Measure throughput over a loopback pair for a sweep of thresholds and message sizes'
complete -c dcsend -n "__fish_dcsend_using_subcommand help; and not __fish_seen_subcommand_from send recv bench signal doctor completions man help" -f -a "signal" -d 'Run the signaling server that `--peer URL` connects through'
complete -c dcsend -n "__fish_dcsend_using_subcommand help; and not __fish_seen_subcommand_from send recv bench signal doctor completions man help" -f -a "doctor" -d 'Check what this machine\'s network allows: public address, NAT type, TURN'
complete -c dcsend -n "__fish_dcsend_using_subcommand help; and not __fish_seen_subcommand_from send recv bench signal doctor completions man help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c dcsend -n "__fish_dcsend_using_subcommand help; and not __fish_seen_subcommand_from send recv bench signal doctor completions man help" -f -a "man" -d 'Write man pages (dcsend.1 and one per subcommand) into a folder'
complete -c dcsend -n "__fish_dcsend_using_subcommand help; and not __fish_seen_subcommand_from send recv bench signal doctor completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
