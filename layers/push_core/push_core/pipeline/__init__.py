"""The delivery pipeline, one module per stage in the order a message passes through them:

publish → jobs → expand → deliver → send → feedback

- ``publish``: accept a publication, record it, enqueue one expand job per audience shard (PublishFunction);
- ``jobs``: the messages on the fan-out, delivery and feedback queues, and sending them without loss;
- ``expand``: read an audience page by page into packed delivery batches (FanoutFunction);
- ``deliver``: work through a delivery batch slice by slice under a lease, recording each (DeliverFunction);
- ``send``: hand one slice to the platforms' providers and sort their answers (the inbox is written here);
- ``feedback``: prune the targets a provider called dead (FeedbackFunction).
"""
