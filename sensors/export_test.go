package sensors

// OpenBufferedConn lets the throughput benchmark give its raw subscriber
// the connection coid's subscriber uses (COID_BENCH_RAW_BUFFERED).
var OpenBufferedConn = openBufferedConn

// ReadConnect lets FuzzReadConnect drive the listener's CONNECT reader.
var ReadConnect = readConnect
