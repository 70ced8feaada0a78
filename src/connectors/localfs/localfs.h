/*
 * localfs.h — the localfs connector's entry point, for init.c.
 */
#ifndef COCO_LOCALFS_H
#define COCO_LOCALFS_H

extern void coco_localfs_register(void);

#endif							/* COCO_LOCALFS_H */
