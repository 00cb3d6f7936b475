"""Apache Spark as an optional engine for banks beyond one machine.

The same feature SQL (transpiled, :mod:`uplift.features.spark`), the same scoring code run on
partitions (:mod:`uplift.spark.scoring`), and the allocator's Lagrangian dual priced on
partitions with only the multiplier update on the driver (:mod:`uplift.spark.allocate`).
"""
