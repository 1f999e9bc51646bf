# Runs inside L1 of the nested lab (tests/nested/lab.sh run): a stock Debian
# kernel as L2 under real KVM is snapshotted, then restored twice in new
# processes. Prints markers the test checks.
cd /tmp
G=/guest/x86_64
wait_for() { # FILE TEXT TENTHS
    i=0
    while ! grep -q "$2" "$1"; do
        sleep 0.1; i=$((i+1))
        [ $i -gt "$3" ] && { echo "TIMEOUT waiting for $2 in $1"; tail -20 "$1"; exit 1; }
    done
}
mkfifo in0 in1 in2 in3
sleep 1000 > in0 &
vessel vm run --kernel $G/vmlinuz --initrd $G/initrd.img --memory 256M --cpus 2 \
    --append "console=ttyS0 quiet" --console stdio --api-sock /tmp/a.sock < in0 > con0.log 2>&1 &
VM=$!
wait_for con0.log VESSEL-GUEST-READY 1200
sleep 1
echo 'echo before-snapshot > /tmp/note; echo WROTE$((40+2))' > in0
wait_for con0.log WROTE42 300
vessel vm snapshot --api-sock /tmp/a.sock /tmp/snap > snap.json || { echo SNAPSHOT-FAILED; exit 1; }
echo "SNAPSHOT-AT $(date +%s)"
# a diff snapshot a little later holds only what changed since
echo 'echo after-full > /tmp/note2; echo WROTE$((50+2))' > in0
wait_for con0.log WROTE52 300
vessel vm snapshot --api-sock /tmp/a.sock --diff /tmp/snapd > snapd.json || { echo DIFF-FAILED; exit 1; }
echo "DIFF-SIZES $(du -k /tmp/snap/memory | cut -f1) $(du -k /tmp/snapd/memory | cut -f1)"
kill $VM; wait $VM
# clones of the full snapshot: each one runs and serves its own API
vessel vm clone /tmp/snap --count 2 --dir /tmp/clones || { echo CLONE-FAILED; exit 1; }
for c in 0 1; do
    vessel vm info --api-sock /tmp/clones/clone-$c/api.sock | grep -q '"running"' && echo "CLONE-$c-RUNNING"
    vessel vm stop --api-sock /tmp/clones/clone-$c/api.sock > /dev/null
done
sleep 1000 > in3 &
vessel vm restore /tmp/snapd --console stdio < in3 > con3.log 2>&1 &
R=$!
echo 'cat /tmp/note /tmp/note2; echo DIFFRESTORED$((6*7))' > in3
wait_for con3.log DIFFRESTORED42 300
kill $R; wait $R
echo "=== diff restore"; cat con3.log
sleep 3
for n in 1 2; do
    sleep 1000 > in$n &
    echo "RESTORE-AT $(date +%s)"
    vessel vm restore /tmp/snap --console stdio < in$n > con$n.log 2>&1 &
    R=$!
    echo 'cat /tmp/note; echo GUEST-DATE $(date +%s); echo broken > /tmp/note; echo RESTORED$((6*7))' > in$n
    wait_for con$n.log RESTORED42 300
    echo "L1-DATE $(date +%s)"
    kill $R; wait $R
    echo "=== restore $n"; cat con$n.log
done
# --net user across a restore: a connection the guest opened to a server in
# L1 and one L1 opened into the guest through hostfwd, both idle in the
# guest's read() when the snapshot is taken. The source VM goes away: L1's
# ends see EOF; the restored guest's reads end with a reset, not a hang.
# (each nc reads a fifo a sleeping writer holds open: its stdin never ends,
# and a pipeline from sleep would keep the subshell waiting after nc exits)
mkfifo in4 in5 l1f
sleep 1000 > in4 &
sleep 1000 > l1f &
nc -l -p 7001 < l1f > /tmp/l1srv.out 2>&1 &
L1SRV=$!
vessel vm run --kernel $G/vmlinuz --initrd $G/initrd.img --memory 256M \
    --net user,hostfwd=tcp:127.0.0.1:2323-:23 --append "console=ttyS0 quiet" --console stdio \
    --api-sock /tmp/n.sock < in4 > con4.log 2>&1 &
VM=$!
wait_for con4.log VESSEL-GUEST-READY 1200
sleep 1
echo 'ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up; mkfifo /tmp/f; sleep 1000 > /tmp/f & (nc -l -p 23 < /tmp/f; echo "NC-SERVER-EXIT $?") & (nc 10.0.2.2 7001 < /tmp/f; echo "NC-CLIENT-EXIT $?") & sleep 1; echo NET$((40+2))' > in4
wait_for con4.log NET42 300
( nc 127.0.0.1 2323 < l1f; echo "L1-CLIENT-EXIT $?" > /tmp/l1cli.rc ) &
sleep 2
vessel vm snapshot --api-sock /tmp/n.sock /tmp/snapn > /dev/null || { echo NET-SNAPSHOT-FAILED; exit 1; }
kill $VM; wait $VM
i=0
while [ ! -s /tmp/l1cli.rc ] || kill -0 $L1SRV 2>/dev/null; do
    sleep 0.1; i=$((i+1)); [ $i -gt 100 ] && break
done
kill -0 $L1SRV 2>/dev/null && echo "L1-SERVER-HUNG" || echo "L1-SERVER-EOF"
[ -s /tmp/l1cli.rc ] && echo "L1-CLIENT-EOF" || echo "L1-CLIENT-HUNG"
sleep 1000 > in5 &
vessel vm restore /tmp/snapn --console stdio < in5 > con5.log 2>&1 &
R=$!
wait_for con5.log NC-CLIENT-EXIT 600
wait_for con5.log NC-SERVER-EXIT 600
echo 'echo NETRESTORED$((6*7))' > in5
wait_for con5.log NETRESTORED42 300
kill $R; wait $R
echo "=== net restore"; cat con5.log
echo NESTED-SNAPSHOT-DONE
