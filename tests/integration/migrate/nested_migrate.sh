# Runs inside L1 of the nested lab (tests/nested/lab.sh run): a stock Debian
# kernel as L2 under real KVM migrates between two vessels over TCP while a
# counter runs in it. Prints markers the test checks.
cd /tmp
G=/guest/x86_64
wait_for() { # FILE TEXT TENTHS
    i=0
    while ! grep -q "$2" "$1"; do
        sleep 0.1; i=$((i+1))
        [ $i -gt "$3" ] && { echo "TIMEOUT waiting for $2 in $1"; tail -20 "$1"; exit 1; }
    done
}
mkfifo in0 in1
sleep 1000 > in0 &
sleep 1000 > in1 &
vessel vm run --kernel $G/vmlinuz --initrd $G/initrd.img --memory 256M --cpus 2 \
    --append "console=ttyS0 quiet" --console stdio --api-sock /tmp/a.sock < in0 > con0.log 2>&1 &
SRC=$!
wait_for con0.log VESSEL-GUEST-READY 1200
sleep 1
echo 'echo before-the-move > /tmp/note; (i=0; while true; do echo TICK $i; i=$((i+1)); sleep 0.2; done) & echo WROTE$((40+2))' > in0
wait_for con0.log "TICK 5" 300
vessel vm run --incoming tcp:127.0.0.1:4444 --console stdio < in1 > con1.log 2>&1 &
DST=$!
sleep 1
vessel vm migrate --api-sock /tmp/a.sock --to tcp:127.0.0.1:4444 --quiet > mig.out 2> mig.err
echo "MIGRATE-EXIT $?"
cat mig.out mig.err
wait $SRC
echo "SOURCE-EXIT $?"
LAST=$(grep -o 'TICK [0-9]*' con0.log | tail -1 | cut -d' ' -f2)
echo "SOURCE-LAST $LAST"
wait_for con1.log "TICK $((LAST + 5))" 300
echo 'cat /tmp/note; echo DATE-IN-GUEST $(date +%s); echo MOVED$((6*7))' > in1
wait_for con1.log MOVED42 300
echo "DATE-IN-L1 $(date +%s)"
echo "=== destination"; cat con1.log
kill $DST; wait $DST
echo NESTED-MIGRATE-DONE
