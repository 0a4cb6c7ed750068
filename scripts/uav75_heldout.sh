# Sourced by the drone-photo experiments: which of photos/uav75's photos are held out.
#
#   uav75_hold_out IMAGES SEED COUNT DIR REST
#
# Whole source photos (DSC00550, with its crops DSC00550b, ...) in sha256("SEED:id") order, until
# at least COUNT files of IMAGES are out: DIR/heldout.txt lists them, DIR/REST.txt the others, and
# DIR/photo-order.txt the order of the source photos. Only file names are hashed, so every run
# and machine holds out the same photos for a seed.
uav75_hold_out() {
    local images=$1 seed=$2 count=$3 dir=$4 rest=$5
    ls "$images" | sed -E 's/^(train|val)_//; s/^(DSC[0-9]+).*/\1/' | sort -u |
        while read -r id; do printf '%s %s\n' "$(printf '%s:%s' "$seed" "$id" | sha256sum | cut -c1-16)" "$id"; done |
        sort | cut -d' ' -f2 > "$dir/photo-order.txt"
    : > "$dir/heldout.txt"
    while read -r id; do
        [[ $(wc -l < "$dir/heldout.txt") -ge $count ]] && break
        ls "$images" | grep -E "^(train|val)_${id}[a-z]?\." >> "$dir/heldout.txt"
    done < "$dir/photo-order.txt"
    ls "$images" | grep -vxF -f "$dir/heldout.txt" > "$dir/$rest.txt"
}
