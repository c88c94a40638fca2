
use builtin;
use str;

set edit:completion:arg-completer[dcsend] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dcsend'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dcsend'= {
            cand --threshold 'Low-water threshold of the threshold-based sender: auto or a size [default: auto]'
            cand --max-buffer 'Memory bound of --threshold auto: the most it may let wait in the channel [default: 32MiB]'
            cand --chunk-size 'Size of each data message [default: 64KiB]'
            cand --peer 'Connect through a signaling server (`dcsend signal`) instead of copy-paste'
            cand --qr 'With --peer: show the page URL as a QR code, for a phone''s browser'
            cand --join-timeout 'With --peer: how long to wait for the other side to join the room'
            cand --sdp-out 'Write our token to PATH (atomically; a FIFO is written directly) instead of stderr'
            cand --sdp-in 'Read the peer''s token from PATH ("-" = stdin) instead of the terminal'
            cand --stun 'STUN server, e.g. stun:stun.example.org:3478 (repeatable)'
            cand --turn 'TURN server, e.g. turn:turn.example.org:3478 (repeatable)'
            cand --turn-user 'TURN user name'
            cand --turn-password-file 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)'
            cand --connect-timeout 'Give up if the channel is not open this long after the peer''s token arrived; also bounds the wait for --sdp-in PATH to appear'
            cand --bind 'Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface]'
            cand --socket-buffer 'Kernel buffer to ask for on each UDP socket [default: 16MiB]'
            cand --liveness-timeout 'Declare the peer gone after this much silence once connected'
            cand --progress 'When to show the live view on stderr'
            cand --stats 'Write progress and a final summary as NDJSON to PATH ("-" = stderr)'
            cand --raw 'Send only plain binary messages, then close the channel, for receivers that are not dcsend (a browser, a Pion example)'
            cand --compress 'Compress each message with zstd when that makes it at least 1/16 smaller (text, logs, source trees); a receiver that does not take compressed data gets it as it is'
            cand --offer 'Make the offer (the sender''s default)'
            cand --answer 'Wait for the peer''s offer and answer it (the receiver''s default)'
            cand --long-token 'Print our token in Pion''s long form, for a peer that is not dcsend'
            cand --relay-only 'Use only TURN-relayed candidates'
            cand -q 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
            cand --quiet 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
            cand -v 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
            cand --verbose 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand send 'Send files or stdin (the default action)'
            cand recv 'Receive into stdout, a file or a folder'
            cand bench 'Measure throughput over a loopback pair for a sweep of thresholds and message sizes'
            cand signal 'Run the signaling server that `--peer URL` connects through'
            cand doctor 'Check what this machine''s network allows: public address, NAT type, TURN'
            cand completions 'Print a shell completion script to stdout'
            cand man 'Write man pages (dcsend.1 and one per subcommand) into a folder'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dcsend;send'= {
            cand --threshold 'Low-water threshold of the threshold-based sender: auto or a size [default: auto]'
            cand --max-buffer 'Memory bound of --threshold auto: the most it may let wait in the channel [default: 32MiB]'
            cand --chunk-size 'Size of each data message [default: 64KiB]'
            cand --peer 'Connect through a signaling server (`dcsend signal`) instead of copy-paste'
            cand --qr 'With --peer: show the page URL as a QR code, for a phone''s browser'
            cand --join-timeout 'With --peer: how long to wait for the other side to join the room'
            cand --sdp-out 'Write our token to PATH (atomically; a FIFO is written directly) instead of stderr'
            cand --sdp-in 'Read the peer''s token from PATH ("-" = stdin) instead of the terminal'
            cand --stun 'STUN server, e.g. stun:stun.example.org:3478 (repeatable)'
            cand --turn 'TURN server, e.g. turn:turn.example.org:3478 (repeatable)'
            cand --turn-user 'TURN user name'
            cand --turn-password-file 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)'
            cand --connect-timeout 'Give up if the channel is not open this long after the peer''s token arrived; also bounds the wait for --sdp-in PATH to appear'
            cand --bind 'Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface]'
            cand --socket-buffer 'Kernel buffer to ask for on each UDP socket [default: 16MiB]'
            cand --liveness-timeout 'Declare the peer gone after this much silence once connected'
            cand --progress 'When to show the live view on stderr'
            cand --stats 'Write progress and a final summary as NDJSON to PATH ("-" = stderr)'
            cand --raw 'Send only plain binary messages, then close the channel, for receivers that are not dcsend (a browser, a Pion example)'
            cand --compress 'Compress each message with zstd when that makes it at least 1/16 smaller (text, logs, source trees); a receiver that does not take compressed data gets it as it is'
            cand --offer 'Make the offer (the sender''s default)'
            cand --answer 'Wait for the peer''s offer and answer it (the receiver''s default)'
            cand --long-token 'Print our token in Pion''s long form, for a peer that is not dcsend'
            cand --relay-only 'Use only TURN-relayed candidates'
            cand -q 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
            cand --quiet 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
            cand -v 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
            cand --verbose 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dcsend;recv'= {
            cand -o 'Write to this file, or into this folder when it ends with "/" or is a folder'
            cand --output-path 'Write to this file, or into this folder when it ends with "/" or is a folder'
            cand --peer 'Connect through a signaling server (`dcsend signal`) instead of copy-paste'
            cand --qr 'With --peer: show the page URL as a QR code, for a phone''s browser'
            cand --join-timeout 'With --peer: how long to wait for the other side to join the room'
            cand --sdp-out 'Write our token to PATH (atomically; a FIFO is written directly) instead of stderr'
            cand --sdp-in 'Read the peer''s token from PATH ("-" = stdin) instead of the terminal'
            cand --stun 'STUN server, e.g. stun:stun.example.org:3478 (repeatable)'
            cand --turn 'TURN server, e.g. turn:turn.example.org:3478 (repeatable)'
            cand --turn-user 'TURN user name'
            cand --turn-password-file 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)'
            cand --connect-timeout 'Give up if the channel is not open this long after the peer''s token arrived; also bounds the wait for --sdp-in PATH to appear'
            cand --bind 'Local UDP address to bind (repeatable) [default: 0.0.0.0:0, every interface]'
            cand --socket-buffer 'Kernel buffer to ask for on each UDP socket [default: 16MiB]'
            cand --liveness-timeout 'Declare the peer gone after this much silence once connected'
            cand --progress 'When to show the live view on stderr'
            cand --stats 'Write progress and a final summary as NDJSON to PATH ("-" = stderr)'
            cand -f 'Overwrite existing files'
            cand --force 'Overwrite existing files'
            cand --resume 'Continue a broken transfer from the NAME.part it left (needs -o)'
            cand --sink 'Verify what arrives, then discard it (nothing is written): for measuring a path'
            cand --offer 'Make the offer (the sender''s default)'
            cand --answer 'Wait for the peer''s offer and answer it (the receiver''s default)'
            cand --long-token 'Print our token in Pion''s long form, for a peer that is not dcsend'
            cand --relay-only 'Use only TURN-relayed candidates'
            cand -q 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
            cand --quiet 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
            cand -v 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
            cand --verbose 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dcsend;bench'= {
            cand --threshold 'Low-water thresholds to sweep, comma-separated: sizes, or "auto" for the adaptive mode'
            cand --max-buffer 'Memory bound of the "auto" threshold [default: 32MiB]'
            cand --chunk-size 'Message sizes to sweep, comma-separated'
            cand --size 'Bytes to send in each run'
            cand --duration 'End each run after this long, even if --size is not reached'
            cand --runs 'Measured runs per case'
            cand --warmup 'Unmeasured runs before the measured ones, per case'
            cand --baseline 'Also move the same bytes over a loopback TCP socket and report each case as a ratio of it'
            cand --export-json 'Write the results as JSON to PATH ("-" = stdout)'
            cand --export-csv 'Write the results as CSV (one row per case, with a header) to PATH ("-" = stdout)'
            cand --export-markdown 'Write the results as a Markdown table to PATH ("-" = stdout)'
            cand --socket-buffer 'Kernel buffer to ask for on each UDP socket [default: 16MiB]'
            cand --progress 'When to show the live view on stderr'
            cand -q 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
            cand --quiet 'Show no progress and no summary on stderr (errors still go there; results and exports on stdout or in files are still written)'
            cand -v 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
            cand --verbose 'More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG also works'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dcsend;signal'= {
            cand --listen 'Address to listen on (port 0 = any free port)'
            cand --store 'Keep rooms in Redis (redis://HOST:PORT/DB) instead of this process''s memory'
            cand --stun 'Also answer STUN Binding requests on this UDP address (repeatable)'
            cand --stun-url 'The STUN server handed to peers, instead of this server''s own --stun (repeatable)'
            cand --turn 'A TURN server handed to peers with short-lived credentials (repeatable)'
            cand --turn-secret-file 'File holding the TURN servers'' shared secret (coturn''s static-auth-secret)'
            cand --turn-ttl 'How long the TURN credentials of a join answer are valid'
            cand --room-ttl 'A room with no request from either peer for this long expires'
            cand --max-rooms 'Rooms open at once, over all clients'
            cand --max-rooms-per-client 'Rooms open at once that one client network created'
            cand --claim-timeout 'A peer that sends no message this long after joining loses its seat'
            cand --presence-timeout 'A peer with no request open and none for this long has left: its seat is freed'
            cand --max-connections 'Connections open at once, over all clients'
            cand --max-connections-per-client 'Connections open at once from one client network (see --max-rooms-per-client)'
            cand --header-timeout 'A request''s head must arrive within this (and a kept-alive connection''s next request)'
            cand --idle-timeout 'A connection with no request being handled for this long is closed'
            cand --client-prefix-v4 'Bits of an IPv4 address that name the client''s network (0-32)'
            cand --client-prefix-v6 'Bits of an IPv6 address that name the client''s network (0-128)'
            cand --log-format 'Log lines as text or as JSON objects (one per line), on stderr'
            cand -q 'Log less (warnings and errors only)'
            cand --quiet 'Log less (warnings and errors only)'
            cand -v 'Log more (-v debug, -vv trace). RUST_LOG also works'
            cand --verbose 'Log more (-v debug, -vv trace). RUST_LOG also works'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dcsend;doctor'= {
            cand --stun 'STUN server to ask for this machine''s public address (repeatable)'
            cand --turn 'TURN server to ask for an allocation (repeatable); credentials as for sending'
            cand --turn-user 'TURN user name'
            cand --turn-password-file 'File holding the TURN password (else DCSEND_TURN_PASSWORD is used)'
            cand --peer 'Check the STUN and TURN servers a signaling server hands out, e.g. https://signal.example.org/'
            cand --bind 'Local UDP address to probe from [default: 0.0.0.0:0]'
            cand --json 'Print the findings as one JSON object on stdout'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dcsend;completions'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'dcsend;man'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'dcsend;help'= {
            cand send 'Send files or stdin (the default action)'
            cand recv 'Receive into stdout, a file or a folder'
            cand bench 'Measure throughput over a loopback pair for a sweep of thresholds and message sizes'
            cand signal 'Run the signaling server that `--peer URL` connects through'
            cand doctor 'Check what this machine''s network allows: public address, NAT type, TURN'
            cand completions 'Print a shell completion script to stdout'
            cand man 'Write man pages (dcsend.1 and one per subcommand) into a folder'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dcsend;help;send'= {
        }
        &'dcsend;help;recv'= {
        }
        &'dcsend;help;bench'= {
        }
        &'dcsend;help;signal'= {
        }
        &'dcsend;help;doctor'= {
        }
        &'dcsend;help;completions'= {
        }
        &'dcsend;help;man'= {
        }
        &'dcsend;help;help'= {
        }
    ]
    $completions[$command]
}
