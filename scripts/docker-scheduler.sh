#!/bin/sh
# The scheduler service of docker-compose.yml: runs `medallion run` on the
# cron schedule in $MEDALLION_SCHEDULE (set once, in docker-compose.yml) with
# the container's environment, logging JSON to the container's stdout. cron
# starts jobs with an empty environment, so it is saved here for them.
set -eu
: "${MEDALLION_SCHEDULE:?set MEDALLION_SCHEDULE to a cron expression, e.g. 0 2 * * *}"
env | grep -E '^(AWS_|MEDALLION_)' | sed 's/^/export /; s/=\(.*\)$/="\1"/' > /etc/medallion.env
cat > /etc/cron.d/medallion <<CRON
SHELL=/bin/sh
$MEDALLION_SCHEDULE root . /etc/medallion.env && cd /app && /usr/local/bin/medallion --log-format json run $MEDALLION_RUN_ARGS > /proc/1/fd/1 2>&1
CRON
chmod 0644 /etc/cron.d/medallion
echo "medallion scheduled: $MEDALLION_SCHEDULE medallion run $MEDALLION_RUN_ARGS"
exec cron -f
