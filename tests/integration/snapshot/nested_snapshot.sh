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
echo NESTED-SNAPSHOT-DONE
